"""The spec language's checks, one rule at a time, in memory.

Every test edits a small valid spec (BASE), validates the text and asserts the
field path, a fragment of the message and the line:column the diagnostic
points at. Positions are found by searching the edited text (``at``), never by
asking mllc.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mllc.errors import Diagnostic
from mllc.spec.load import load_all, load_file, load_text_as_spec, validate_data
from mllc.spec.yamlsafe import Positions

WriteSpec = Callable[..., Path]

BASE = """\
apiVersion: mllc/v1
kind: Lifecycle
metadata:
  name: iris
  owner: ml-team@example.com
problem:
  task: classification
  target: target
  metric: f1_macro
data:
  source:
    sklearn: iris
  split:
    test: 0.2
    validation: 0.1
    stratify: true
features:
  numeric:
    columns:
      - sepal
  categorical:
    columns:
      - colour
models:
  forest:
    estimator: sklearn.ensemble.RandomForestClassifier
    params:
      n_estimators: 10
gates:
  - accuracy >= 0.9
environments:
  staging:
    target: local
    model: latest
    port: 8081
  production:
    target: local
    port: 8082
    after: staging
monitoring:
  schedule: "0 6 * * *"
  performance:
    metric: accuracy
    min: 0.85
"""


# ------------------------------------------------------------------ helpers


def edit(text: str, old: str, new: str) -> str:
    """Replace ``old`` (which must occur exactly once) by ``new``."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in the spec"
    return text.replace(old, new)


def at(text: str, before: str, value: str = "") -> tuple[int, int]:
    """1-based (line, column) of ``value`` where it follows the unique text ``before``."""
    needle = before + value
    assert text.count(needle) == 1, f"{needle!r} occurs {text.count(needle)} times"
    offset = text.index(needle) + len(before)
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def diags(text: str, **kwargs: Any) -> list[Diagnostic]:
    return list(load_text_as_spec("spec.yaml", text, **kwargs).diagnostics)


def only(text: str) -> Diagnostic:
    """The one diagnostic of ``text`` (any other is a failure: rules must not pile up)."""
    found = diags(text)
    assert len(found) == 1, "\n".join(d.render() for d in found) or "no diagnostic"
    return found[0]


def check(
    text: str, path: str, fragment: str, where: tuple[int, int], code: str | None = None
) -> Diagnostic:
    d = only(text)
    assert d.path == path, d.render()
    assert fragment in d.message, d.render()
    assert (d.line, d.column) == where, d.render()
    assert d.file == "spec.yaml"
    if code is not None:
        assert d.code == code, d.render()
    return d


def ok(text: str) -> None:
    found = diags(text)
    assert not found, "\n".join(d.render() for d in found)


def regression(text: str = BASE) -> str:
    """BASE turned into a valid regression spec."""
    text = edit(text, "task: classification", "task: regression")
    text = edit(text, "metric: f1_macro", "metric: rmse")
    text = edit(text, "sklearn: iris", "sklearn: diabetes")
    text = edit(text, "    stratify: true\n", "")
    text = edit(text, "RandomForestClassifier", "RandomForestRegressor")
    text = edit(text, "accuracy >= 0.9", "r2 >= 0.3")
    return edit(text, "metric: accuracy\n    min: 0.85", "metric: rmse\n    max: 40")


def test_base_and_regression_variant_are_valid() -> None:
    ok(BASE)
    ok(regression())


def test_full_valid_spec_validates_as_data(valid_spec: dict[str, Any]) -> None:
    result = validate_data("iris.yaml", valid_spec, Positions())
    assert result.ok and result.spec is not None
    assert result.spec.metadata.name == "iris"


# ------------------------------------------------------------------ metrics vs task


def test_primary_metric_of_the_other_task() -> None:
    text = edit(BASE, "metric: f1_macro", "metric: rmse")
    d = check(
        text, "problem.metric", "'rmse' is a regression metric", at(text, "  metric: ", "rmse")
    )
    assert "problem.task is classification" in d.message


def test_primary_metric_typo_gets_a_hint() -> None:
    text = edit(BASE, "metric: f1_macro", "metric: f1_macr")
    check(text, "problem.metric", "did you mean 'f1_macro'?", at(text, "  metric: ", "f1_macr"))


def test_gate_metric_must_fit_the_task() -> None:
    text = edit(BASE, "- accuracy >= 0.9", "- accuracy >= 0.9\n  - rmse < 0.5")
    check(text, "gates[1]", "'rmse' is a regression metric", at(text, "  - ", "rmse < 0.5"))


def test_classification_gate_under_regression() -> None:
    text = edit(regression(), "r2 >= 0.3", "accuracy >= 0.9")
    d = check(text, "gates[0]", "'accuracy' is a classification metric", at(text, "- ", "acc"))
    assert "rmse, mae, r2, mape" in d.message


def test_monitored_metric_must_fit_the_task() -> None:
    text = edit(BASE, "metric: accuracy\n    min: 0.85", "metric: mae\n    max: 3")
    where = at(text, "    metric: ", "mae")
    check(text, "monitoring.performance.metric", "'mae' is a regression metric", where)


def test_higher_is_better_metric_breaches_with_min() -> None:
    text = edit(BASE, "    min: 0.85", "    max: 0.85")
    where = at(text, "    max: ", "0.85")
    check(text, "monitoring.performance.max", "accuracy is better when higher", where)


def test_lower_is_better_metric_breaches_with_max() -> None:
    text = edit(BASE, "metric: accuracy\n    min: 0.85", "metric: log_loss\n    min: 0.5")
    where = at(text, "    min: ", "0.5")
    check(text, "monitoring.performance.min", "log_loss is better when lower", where)


def test_lower_is_better_regression_metric_with_min() -> None:
    text = edit(regression(), "    max: 40", "    min: 40")
    check(text, "monitoring.performance.min", "rmse is better when lower", at(text, "min: ", "40"))


# ------------------------------------------------------------------ gates


@pytest.mark.parametrize(
    "gate", ["accuracy >= 0.9", "accuracy <= 1", "accuracy > .5", "log_loss < 2e-1"]
)
def test_gate_operators_accepted(gate: str) -> None:
    ok(edit(BASE, "accuracy >= 0.9", gate))


@pytest.mark.parametrize(
    "gate", ["accuracy => 0.9", "accuracy == 0.9", "accuracy >=", "accuracy 0.9"]
)
def test_malformed_gate_rejected(gate: str) -> None:
    text = edit(BASE, "accuracy >= 0.9", gate)
    d = check(text, "gates[0]", "is not a gate", at(text, "  - ", gate))
    assert "one of >= <= > <" in d.message


# ------------------------------------------------------------------ split


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("test", "0", "greater than 0"),
        ("test", "1", "less than 1"),
        ("validation", "0", "greater than 0"),
        ("validation", "1", "less than 1"),
    ],
)
def test_split_fraction_bounds(field: str, value: str, fragment: str) -> None:
    old = {"test": "test: 0.2", "validation": "validation: 0.1"}[field]
    text = edit(BASE, old, f"{field}: {value}")
    d = check(text, f"data.split.{field}", fragment, at(text, f"    {field}: ", value))
    assert d.message.endswith(f"(got {value})")


def test_split_must_leave_a_tenth_for_training() -> None:
    text = edit(BASE, "test: 0.2\n    validation: 0.1", "test: 0.5\n    validation: 0.45")
    d = check(text, "data.split", "at least 0.1 must remain", at(text, "  split:\n    ", "test"))
    assert "test + validation = 0.95" in d.message


def test_split_leaving_exactly_a_tenth_is_fine() -> None:
    ok(edit(BASE, "test: 0.2\n    validation: 0.1", "test: 0.6\n    validation: 0.3"))


def test_stratify_needs_classification() -> None:
    text = edit(regression(), "    validation: 0.1\n", "    validation: 0.1\n    stratify: true\n")
    where = at(text, "stratify: ", "true")
    check(text, "data.split.stratify", "a stratified split needs a classification task", where)


# ------------------------------------------------------------------ target and columns


@pytest.mark.parametrize(("kind", "existing"), [("numeric", "sepal"), ("categorical", "colour")])
def test_target_is_not_a_feature(kind: str, existing: str) -> None:
    text = edit(BASE, f"      - {existing}\n", f"      - {existing}\n      - target\n")
    line = at(text, f"      - {existing}\n      - ", "target")
    check(text, f"features.{kind}.columns[1]", "'target' is problem.target, not a feature", line)


def with_columns(declared: str, text: str = BASE) -> str:
    return edit(text, "  split:\n", f"  columns:\n    {declared}\n  split:\n")


@pytest.mark.parametrize(
    ("declared", "fragment"),
    [
        ("a: {type: float, min: 5, max: 1}", "min (5) is greater than max (1)"),
        ("a: {type: string, min: 1}", "min/max apply to int and float columns, not string"),
        ("a: {type: float, values: [x]}", "values apply to category columns, not float"),
        ("a: {type: int, min: 0.5}", "an int column needs whole bounds (got 0.5)"),
        ("a: {type: category, values: [x, y, x]}", "values lists x more than once"),
        ("a: {type: category, values: []}", "at least one category"),
    ],
)
def test_declared_column_coherence(declared: str, fragment: str) -> None:
    text = with_columns(declared)
    check(text, "data.columns.a", fragment, at(text, "    a: ", "{"))


def test_int_column_with_whole_bounds_is_fine() -> None:
    ok(with_columns("a: {type: int, min: 0, max: 10.0}"))


def test_numeric_feature_declared_category() -> None:
    text = with_columns("sepal: {type: category, values: [s, m, l]}")
    where = at(text, "      - ", "sepal")
    check(
        text, "features.numeric.columns[0]", "'sepal' is declared category in data.columns", where
    )


def test_feature_used_twice() -> None:
    text = edit(BASE, "      - colour\n", "      - colour\n      - sepal\n")
    where = at(text, "      - colour\n      - ", "sepal")
    check(text, "features.categorical.columns[1]", "'sepal' is already a numeric feature", where)


def test_distinct_category_values_of_different_types_are_not_duplicates() -> None:
    ok(with_columns("a: {type: category, values: [1, true]}"))


@pytest.mark.parametrize("item", ["[a]", "{a: 1}"])
def test_malformed_exclude_is_reported_not_raised(item: str) -> None:
    text = edit(BASE, "features:\n", f"features:\n  exclude:\n    - {item}\n")
    d = only(text)
    assert d.path == "features.exclude[0]"
    assert "valid string" in d.message
    assert (d.line, d.column) == at(text, "    - ", item)


# ------------------------------------------------------------------ environments


def test_after_unknown_environment_with_hint() -> None:
    text = edit(BASE, "after: staging", "after: stagin")
    where = at(text, "after: ", "stagin")
    d = check(text, "environments.production.after", "no environment named 'stagin'", where)
    assert d.message.endswith("did you mean 'staging'?")


def test_after_itself() -> None:
    text = edit(BASE, "after: staging", "after: production")
    where = at(text, "after: ", "production")
    check(text, "environments.production.after", "cannot come after itself", where)


def test_cycle_of_two_is_one_error() -> None:
    text = edit(BASE, "    port: 8081\n", "    port: 8081\n    after: production\n")
    where = at(text, "after: ", "production")
    d = check(text, "environments.staging.after", "promotion order has a cycle", where)
    assert d.message.endswith("staging -> production -> staging")


def test_cycle_of_three_is_one_error() -> None:
    text = edit(BASE, "    port: 8081\n", "    port: 8081\n    after: canary\n")
    text = edit(
        text,
        "    after: staging\n",
        "    after: staging\n  canary:\n    target: local\n    port: 8090\n    after: production\n",
    )
    where = at(text, "after: ", "canary")
    d = check(text, "environments.staging.after", "promotion order has a cycle", where)
    assert d.message.endswith("staging -> canary -> production -> staging")


def test_two_independent_cycles_are_two_errors() -> None:
    text = edit(BASE, "    port: 8081\n", "    port: 8081\n    after: production\n")
    text = edit(
        text,
        "monitoring:",
        "  a:\n    target: local\n    port: 8091\n    after: b\n"
        "  b:\n    target: local\n    port: 8092\n    after: a\nmonitoring:",
    )
    found = diags(text)
    assert [d.path for d in found] == ["environments.staging.after", "environments.a.after"]
    assert all("cycle" in d.message for d in found)


@pytest.mark.parametrize("model", ["latest", "v1.2.3", "v0.0.0", "v10.20.30"])
def test_model_version_accepted(model: str) -> None:
    ok(edit(BASE, "model: latest", f"model: {model}"))


@pytest.mark.parametrize(
    ("model", "hint"),
    [("v2", "did you mean 'v2.0.0'?"), ("'1.0'", "did you mean 'v1.0.0'?"), ("v1.2", "'v1.2.0'")],
)
def test_model_version_rejected_with_hint(model: str, hint: str) -> None:
    text = edit(BASE, "model: latest", f"model: {model}")
    d = check(
        text,
        "environments.staging.model",
        "neither 'latest' nor a version vX.Y.Z",
        at(text, "model: ", model),
    )
    assert hint in d.message


def test_model_version_with_leading_zero_rejected() -> None:
    text = edit(BASE, "model: latest", "model: v01.0.0")
    where = at(text, "model: ", "v01.0.0")
    check(text, "environments.staging.model", "'v01.0.0' is neither 'latest' nor a version", where)


def test_model_version_leading_zero_hint_is_valid() -> None:
    d = only(edit(BASE, "model: latest", "model: v01.0.0"))
    assert "did you mean 'v1.0.0'?" in d.message


@pytest.mark.parametrize(
    ("port", "fragment"),
    [("1023", "greater than or equal to 1024"), ("65536", "less than or equal to 65535")],
)
def test_port_out_of_range(port: str, fragment: str) -> None:
    text = edit(BASE, "port: 8081", f"port: {port}")
    check(text, "environments.staging.port", fragment, at(text, "port: ", port))


@pytest.mark.parametrize("port", ["1024", "65535"])
def test_port_bounds_accepted(port: str) -> None:
    ok(edit(BASE, "port: 8081", f"port: {port}"))


def test_duplicate_port() -> None:
    text = edit(BASE, "port: 8082", "port: 8081")
    check(
        text,
        "environments.production.port",
        "port 8081 is already used by environment 'staging'",
        at(text, "    target: local\n    port: ", "8081\n    after"),
    )


# ------------------------------------------------------------------ names

BAD_NAMES = ["Iris", "my_model", "1model", "model-", "a" * 64]


def _name_fragment(name: str) -> str:
    return "longer than 63 characters" if len(name) > 63 else "is not a lowercase DNS label"


@pytest.mark.parametrize("name", BAD_NAMES)
def test_metadata_name_is_a_dns_label(name: str) -> None:
    text = edit(BASE, "name: iris", f"name: {name}")
    check(text, "metadata.name", _name_fragment(name), at(text, "  name: ", name))


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("Iris", "models.Iris"),
        ("my_model", "models.my_model"),
        ("1model", 'models["1model"]'),
        ("model-", "models.model-"),
        ("a" * 64, "models." + "a" * 64),
    ],
)
def test_model_key_is_a_dns_label(name: str, path: str) -> None:
    text = edit(BASE, "  forest:", f"  {name}:")
    check(text, path, _name_fragment(name), at(text, "models:\n  ", name))


@pytest.mark.parametrize("name", BAD_NAMES)
def test_environment_key_is_a_dns_label(name: str) -> None:
    text = edit(BASE, "  production:", f"  {name}:")
    path = 'environments["1model"]' if name == "1model" else f"environments.{name}"
    check(text, path, _name_fragment(name), at(text, "    port: 8081\n  ", name))


def test_longest_dns_label_accepted() -> None:
    ok(edit(BASE, "name: iris", "name: " + "a" * 63))


# ------------------------------------------------------------------ estimators


def test_estimator_outside_allow_list() -> None:
    text = edit(BASE, "sklearn.ensemble.RandomForestClassifier", "os.system")
    d = check(
        text,
        "models.forest.estimator",
        "'os.system' is not an allowed estimator",
        at(text, "estimator: ", "os.system"),
    )
    assert "did you mean" not in d.message


def test_estimator_typo_gets_a_hint() -> None:
    text = edit(BASE, "RandomForestClassifier", "RandomForestClasifier")
    d = check(
        text,
        "models.forest.estimator",
        "is not an allowed estimator",
        at(text, "estimator: ", "sklearn"),
    )
    assert "did you mean 'sklearn.ensemble.RandomForestClassifier'?" in d.message


def test_regressor_under_classification() -> None:
    text = edit(BASE, "RandomForestClassifier", "RandomForestRegressor")
    check(
        text,
        "models.forest.estimator",
        "RandomForestRegressor is a regression estimator, but problem.task is classification",
        at(text, "estimator: ", "sklearn"),
    )


def test_mllc_toml_extends_the_allow_list(tmp_path: Path, write_spec: WriteSpec) -> None:
    text = edit(BASE, "sklearn.ensemble.RandomForestClassifier", "mypkg.Clf")
    spec = write_spec(tmp_path / "specs", text, "iris.yaml")
    results, problems = load_all([str(tmp_path / "specs")])
    assert not problems
    assert [d.message for d in results[0].diagnostics] == [
        "'mypkg.Clf' is not an allowed estimator: name a scikit-learn estimator class "
        "(see docs/spec.md) or extend the allow-list in mllc.toml"
    ]
    (tmp_path / "mllc.toml").write_text('[estimators]\nclassification = ["mypkg.Clf"]\n')
    results, problems = load_all([str(spec)])
    assert not problems
    assert results[0].ok, [d.render() for d in results[0].diagnostics]


def test_mllc_toml_estimator_keeps_its_task(tmp_path: Path, write_spec: WriteSpec) -> None:
    (tmp_path / "mllc.toml").write_text('[estimators]\nclassification = ["mypkg.Clf"]\n')
    text = edit(regression(), "sklearn.ensemble.RandomForestRegressor", "mypkg.Clf")
    write_spec(tmp_path, text)
    results, _ = load_all([str(tmp_path / "spec.yaml")])
    (d,) = results[0].diagnostics
    assert d.path == "models.forest.estimator"
    assert d.message == "Clf is a classification estimator, but problem.task is regression"


def test_malformed_mllc_toml_is_reported(tmp_path: Path, write_spec: WriteSpec) -> None:
    (tmp_path / "mllc.toml").write_text('[estimators]\nclassification = "mypkg.Clf"\n')
    write_spec(tmp_path, BASE)
    _, problems = load_all([str(tmp_path / "spec.yaml")])
    assert [(p.path, p.message) for p in problems] == [
        ("estimators.classification", "must be a list of dotted class names")
    ]


# ------------------------------------------------------------------ paths

BAD_PATHS = [
    ("/etc/passwd", "must be relative to the repository root"),
    ("../data.csv", "must stay inside the repository (no '..')"),
    ("data/../../x.csv", "must stay inside the repository (no '..')"),
    ('"data\\0x.csv"', "must not contain a NUL character"),
    ("'data\\x.csv'", "use '/' as the separator"),
    ("~/data.csv", "must be relative to the repository root"),
]


@pytest.mark.parametrize("kind", ["csv", "parquet"])
@pytest.mark.parametrize(("value", "fragment"), BAD_PATHS)
def test_source_paths(kind: str, value: str, fragment: str) -> None:
    text = edit(BASE, "sklearn: iris", f"{kind}: {value}")
    check(text, f"data.source.{kind}", fragment, at(text, f"{kind}: ", value))


def with_command(text: str = BASE, deps: str = "[train.py]") -> str:
    return edit(
        text,
        "    estimator: sklearn.ensemble.RandomForestClassifier\n"
        "    params:\n      n_estimators: 10\n",
        f"    command: python train.py\n    deps: {deps}\n",
    )


@pytest.mark.parametrize(("value", "fragment"), BAD_PATHS)
def test_command_deps_paths(value: str, fragment: str) -> None:
    text = with_command(deps=f"[src/ok.py, {value}]")
    check(text, "models.forest.deps[1]", fragment, at(text, "ok.py, ", value))


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_relative_source_path_accepted(kind: str) -> None:
    ok(edit(BASE, "sklearn: iris", f"{kind}: data/iris.{kind}"))


# ------------------------------------------------------------------ exclusive choices


def test_source_needs_one_kind() -> None:
    text = edit(BASE, "  source:\n    sklearn: iris\n", "  source: {}\n")
    check(
        text,
        "data.source",
        "give exactly one of 'sklearn', 'csv' or 'parquet'",
        at(text, "source: ", "{}"),
    )


def test_source_with_two_kinds() -> None:
    text = edit(BASE, "    sklearn: iris\n", "    sklearn: iris\n    csv: data/iris.csv\n")
    d = check(text, "data.source", "give exactly one of", at(text, "source:\n    ", "sklearn"))
    assert d.message.endswith("(got sklearn, csv)")


def test_command_candidate_is_valid() -> None:
    ok(with_command())


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        (
            "    params:\n",
            "    command: python x.py\n    params:\n",
            "give exactly one of 'estimator' or 'command'",
        ),
        (
            "    estimator: sklearn.ensemble.RandomForestClassifier\n",
            "",
            "give exactly one of 'estimator' or 'command'",
        ),
        ("    params:\n", "    deps: [x.py]\n    params:\n", "deps apply to a command"),
    ],
)
def test_candidate_kind_is_exclusive(old: str, new: str, fragment: str) -> None:
    text = edit(BASE, old, new)
    check(text, "models.forest", fragment, at(text, "  forest:\n    ", ""))


def test_command_with_params() -> None:
    text = edit(with_command(), "    deps: [train.py]\n", "    params: {a: 1}\n")
    check(
        text,
        "models.forest",
        "params and search apply to an estimator, not a command",
        at(text, "  forest:\n    ", ""),
    )


def test_kubernetes_target_needs_its_section() -> None:
    text = edit(BASE, "    target: local\n    port: 8082\n", "    target: kubernetes\n")
    check(
        text,
        "environments.production",
        "target kubernetes needs a 'kubernetes' section",
        at(text, "  production:\n    ", ""),
    )


def test_kubernetes_target_with_section_is_valid() -> None:
    ok(
        edit(
            BASE,
            "    target: local\n    port: 8082\n",
            "    target: kubernetes\n    kubernetes:\n      storage_uri: s3://models/iris\n",
        )
    )


def test_non_loopback_host_needs_a_token() -> None:
    text = edit(BASE, "    port: 8082\n", "    port: 8082\n    host: 0.0.0.0\n")
    d = check(
        text,
        "environments.production",
        "binding '0.0.0.0' exposes the server",
        at(text, "  production:\n    ", ""),
    )
    assert "token: env:NAME" in d.message


def test_token_must_be_a_reference() -> None:
    text = edit(BASE, "    port: 8082\n", "    port: 8082\n    host: 0.0.0.0\n    token: s3cr3t\n")
    check(text, "environments.production.token", "as 'env:NAME'", at(text, "token: ", "s3cr3t"))


@pytest.mark.parametrize(("host", "token"), [("0.0.0.0", "env:MLLC_TOKEN"), ("localhost", None)])
def test_host_and_token_accepted(host: str, token: str | None) -> None:
    extra = f"    host: {host}\n" + (f"    token: {token}\n" if token else "")
    ok(edit(BASE, "    port: 8082\n", "    port: 8082\n" + extra))


@pytest.mark.parametrize(
    ("schedule", "fragment"),
    [
        ("0 6 * *", "is not a cron schedule: five fields"),
        ("60 6 * * *", "cron minute 60 is outside 0-59"),
        ("0 24 * * *", "cron hour 24 is outside 0-23"),
        ("0 6 0 * *", "cron day 0 is outside 1-31"),
        ("0 6 * 13 *", "cron month 13 is outside 1-12"),
        ("0 6 * * 8", "cron weekday 8 is outside 0-7"),
        ("x 6 * * *", "cron minute field 'x' is not valid"),
    ],
)
def test_bad_cron(schedule: str, fragment: str) -> None:
    text = edit(BASE, '"0 6 * * *"', f'"{schedule}"')
    check(text, "monitoring.schedule", fragment, at(text, "schedule: ", '"'))


@pytest.mark.parametrize("schedule", ["*/15 0-23 1,15 * 1-5", "0 6 * * 7", "59 23 31 12 0"])
def test_good_cron(schedule: str) -> None:
    ok(edit(BASE, '"0 6 * * *"', f'"{schedule}"'))


# ------------------------------------------------------------------ unknown keys and literals


def test_unknown_key_with_hint() -> None:
    text = edit(BASE, "  split:", "  splitt:")
    d = check(text, "data.splitt", "unknown key 'splitt'", at(text, "  ", "splitt"), "unknown-key")
    assert d.hint == "did you mean 'split'?"
    assert d.render().endswith("(did you mean 'split'?)")


def test_unknown_key_inside_a_named_model() -> None:
    text = edit(BASE, "    estimator:", "    estimatr:")
    d = only(edit(text, "    params:\n      n_estimators: 10\n", ""))
    assert d.path == "models.forest.estimatr" and d.hint == "did you mean 'estimator'?"


def test_unknown_key_without_a_close_match() -> None:
    text = edit(BASE, "monitoring:", "zzz: 1\nmonitoring:")
    d = check(text, "zzz", "unknown key 'zzz'", at(text, "", "zzz"), "unknown-key")
    assert d.hint is None


def test_literal_typo_hint() -> None:
    text = edit(BASE, "task: classification", "task: clasification")
    d = check(
        text,
        "problem.task",
        "input should be 'classification' or 'regression'",
        at(text, "task: ", "clasification"),
    )
    assert d.hint == "did you mean 'classification'?"


def test_missing_required_field_points_at_its_section() -> None:
    text = edit(BASE, "  metric: f1_macro\n", "")
    check(text, "problem.metric", "required field is missing", at(text, "", "problem:"), "missing")


# ------------------------------------------------------------------ names across files


def test_duplicate_lifecycle_names_across_files(tmp_path: Path, write_spec: WriteSpec) -> None:
    first = write_spec(tmp_path, BASE, "a.yaml")
    second = write_spec(tmp_path, BASE, "b.yaml")
    results, problems = load_all([str(tmp_path)])
    assert not problems
    assert [r.file for r in results] == [str(first), str(second)]
    assert results[0].ok
    (d,) = results[1].diagnostics
    assert (d.path, d.code) == ("metadata.name", "duplicate-name")
    assert d.message == f"lifecycle 'iris' is already defined in {first}"
    assert (d.line, d.column) == at(BASE, "  name: ", "iris")


# ------------------------------------------------------------------ YAML


def test_duplicate_keys_all_reported() -> None:
    text = edit(
        BASE, "  owner: ml-team@example.com\n", "  owner: ml-team@example.com\n  owner: other\n"
    )
    text = edit(text, "    port: 8082\n", "    port: 8082\n    port: 8083\n")
    found = diags(text)
    assert [(d.code, d.message) for d in found] == [
        ("duplicate-key", "duplicate key 'owner' (first defined at line 5)"),
        ("duplicate-key", "duplicate key 'port' (first defined at line 39)"),
    ]
    assert [(d.line, d.column) for d in found] == [
        at(text, "  ", "owner: other"),
        at(text, "    ", "port: 8083"),
    ]


@pytest.mark.parametrize(
    ("tagged", "tag"),
    [
        ("!!python/object/apply:os.system ['true']", "!!python/object/apply:os.system"),
        ("!custom x", "!custom"),
        ("!!binary aGVsbG8=", "!!binary"),
        ("!!set {a, b}", "!!set"),
    ],
)
def test_refused_tags(tagged: str, tag: str) -> None:
    text = edit(BASE, "owner: ml-team@example.com", f"owner: {tagged}")
    d = check(text, "", f"tag '{tag}' is not allowed", at(text, "owner: ", tagged), "yaml-tag")
    assert "plain data only" in d.message


def test_python_tag_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = edit(
        BASE,
        "owner: ml-team@example.com",
        f"owner: !!python/object/apply:os.system ['touch {marker}']",
    )
    assert only(text).code == "yaml-tag"
    assert not marker.exists()


def test_merge_keys_refused() -> None:
    text = edit(BASE, "    port: 8082\n", "    port: 8082\n    <<: {host: localhost}\n")
    check(text, "", "merge keys (<<) are not supported", at(text, "    ", "<<"), "yaml")


def test_nul_byte() -> None:
    text = edit(BASE, "owner: ml-team", "owner: ml\x00team")
    check(text, "", "file contains a NUL byte", (at(text, "", "  owner")[0], 1), "yaml")


def test_size_cap() -> None:
    text = BASE + "# " + "x" * (1 << 20) + "\n"
    check(text, "", "file is larger than 1024 KiB; refused", (1, 1), "yaml")


def test_just_under_the_size_cap_is_read() -> None:
    text = BASE + "# " + "x" * ((1 << 20) - len(BASE) - 3) + "\n"
    assert len(text) == 1 << 20
    ok(text)


def test_size_cap_counts_bytes(tmp_path: Path, write_spec: WriteSpec) -> None:
    spec = write_spec(tmp_path, BASE + "# " + "é" * (700 * 1024) + "\n")
    assert spec.stat().st_size > 1 << 20
    (d,) = load_file(spec).diagnostics
    assert "larger than" in d.message


def test_alias_bomb_refused_fast() -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    text = "\n".join(lines) + "\n"  # 9**9 = 387 million strings once expanded
    # CPU time of this process, not wall time: a loaded machine cannot make it fail, and
    # expanding the aliases (387 million strings) would take minutes of CPU
    start = time.process_time()
    found = diags(text)
    elapsed = time.process_time() - start
    assert elapsed < 5.0, f"took {elapsed:.2f} s of CPU"
    (d,) = found
    assert d.code == "yaml-too-large"
    assert "aliases are expanded each time they are used" in d.message


def test_recursive_alias_refused() -> None:
    d = only("a: &a [*a]\n")
    assert d.code == "yaml" and "nesting deeper than 64 levels" in d.message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(text: str) -> None:
    check(text, "", "the file is empty: a spec is a mapping", (1, 1))


def test_top_level_list() -> None:
    check(
        "# a list\n- a\n- b\n",
        "",
        "a spec is a mapping (apiVersion, kind, metadata, ...), not a list",
        (2, 1),
    )


@pytest.mark.parametrize(
    ("text", "where", "fragment"),
    [
        # the ':' that cannot start a mapping value at that indentation
        ("apiVersion: mllc/v1\nkind: Lifecycle\n  metadata: x\n", (3, 11), "mapping values"),
        # the second ':' on one line
        ("apiVersion: mllc/v1\nkind: Lifecycle: x\n", (2, 16), "mapping values"),
        # the tab itself
        ("apiVersion: mllc/v1\n\tkind: Lifecycle\n", (2, 1), "tab character"),
    ],
)
def test_invalid_yaml_position(text: str, where: tuple[int, int], fragment: str) -> None:
    d = check(text, "", "invalid YAML: ", where, "yaml")
    assert d.message.startswith("invalid YAML: ") and fragment in d.message


def test_unclosed_quote_points_at_the_quote() -> None:
    d = only("apiVersion: mllc/v1\nkind: 'Lifecycle\nmetadata: {}\n")
    assert "quoted scalar" in d.message
    assert d.line == 2 or "line 2" in d.message


def test_non_utf8_bytes(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(b"apiVersion: mllc/v1\nkind: Lifecycle\nmetadata: {name: caf\xe9}\n")
    (d,) = load_file(spec).diagnostics
    assert (d.line, d.column, d.code, d.message) == (3, 1, "yaml", "file is not UTF-8")


def test_utf8_bom_and_crlf_are_fine() -> None:
    ok("\ufeff" + BASE.replace("\n", "\r\n"))


# ------------------------------------------------------------------ every error at once


def test_independent_mistakes_reported_together() -> None:
    text = edit(BASE, "metric: f1_macro", "metric: rmse")
    text = edit(text, "test: 0.2", "test: 0")
    text = edit(text, "  numeric:", "  numerik:")
    text = edit(text, "after: staging", "after: nowhere")
    text = edit(text, '"0 6 * * *"', '"0 25 * * *"')
    found = diags(text)
    assert [d.path for d in found] == [
        "problem.metric",
        "data.split.test",
        "features.numerik",
        "environments.production.after",
        "monitoring.schedule",
    ]
    assert [(d.line, d.column) for d in found] == [
        at(text, "metric: ", "rmse"),
        at(text, "test: ", "0"),
        at(text, "  ", "numerik"),
        at(text, "after: ", "nowhere"),
        at(text, "schedule: ", '"'),
    ]


def test_section_check_reported_alongside_a_field_error() -> None:
    text = edit(BASE, "    model: latest\n", "    model: v2\n    host: 0.0.0.0\n")
    found = diags(text)
    assert [d.path for d in found] == ["environments.staging", "environments.staging.model"]
