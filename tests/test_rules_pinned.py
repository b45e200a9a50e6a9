"""Failing examples for the rules that had none (found by mutation testing).

Each test edits the valid BASE spec of ``test_rules`` so that exactly one rule fires and
asserts the field path, the message and the line:column it points at. A rule that
stopped firing, fired twice, or pointed elsewhere fails here.
"""

from __future__ import annotations

from test_rules import BASE, at, check, diags, edit, ok, regression


def test_feature_also_excluded() -> None:
    text = edit(BASE, "features:\n", "features:\n  exclude: [sepal]\n")
    check(
        text,
        "features.numeric.columns[0]",
        "'sepal' is also in features.exclude",
        at(text, "    columns:\n      - ", "sepal"),
    )


def test_bundled_dataset_of_the_other_task() -> None:
    text = edit(regression(), "sklearn: diabetes", "sklearn: iris")
    check(
        text,
        "data.source.sklearn",
        "dataset 'iris' is a classification dataset, but problem.task is regression",
        at(text, "sklearn: ", "iris"),
    )


def test_bundled_dataset_of_the_same_task_is_fine() -> None:
    ok(BASE)  # iris under classification
    ok(regression())  # diabetes under regression


def _regression_target(ctype: str) -> str:
    return edit(regression(), "\ndata:\n", f"\ndata:\n  columns:\n    target: {{type: {ctype}}}\n")


def test_regression_target_cannot_be_category_string_or_bool() -> None:
    for ctype in ("category", "string", "bool"):
        text = _regression_target(ctype)
        check(
            text,
            "data.columns.target.type",
            f"the regression target cannot be {ctype}",
            at(text, "target: {type: ", ctype),
        )


def test_regression_target_may_be_numeric() -> None:
    ok(_regression_target("float"))
    ok(_regression_target("int"))


def test_classification_target_may_be_category() -> None:
    ok(edit(BASE, "\ndata:\n", "\ndata:\n  columns:\n    target: {type: category}\n"))


def test_impute_without_a_strategy() -> None:
    text = edit(BASE, "\ndata:\n", "\ndata:\n  cleaning: {missing: impute}\n")
    text = edit(text, "  numeric:\n", "  numeric:\n    impute: none\n")
    check(
        text,
        "features.numeric.impute",
        "data.cleaning.missing is 'impute' but this strategy is 'none'",
        at(text, "    impute: ", "none"),
    )


def test_impute_with_strategies_is_fine() -> None:
    ok(edit(BASE, "\ndata:\n", "\ndata:\n  cleaning: {missing: impute}\n"))


def test_no_imputation_without_missing_impute_is_fine() -> None:
    ok(edit(BASE, "  numeric:\n", "  numeric:\n    impute: none\n"))


KUBE = "    target: kubernetes\n    kubernetes:\n      storage_uri: s3://models/iris\n"


def test_kubernetes_target_given_a_port() -> None:
    text = edit(BASE, "    target: local\n    port: 8082\n", KUBE + "    port: 8082\n")
    check(
        text,
        "environments.production",
        "port and host apply to target local",
        at(text, "  production:\n    ", ""),
    )


def test_kubernetes_target_given_a_host() -> None:
    text = edit(BASE, "    target: local\n    port: 8082\n", KUBE + "    host: localhost\n")
    check(
        text,
        "environments.production",
        "port and host apply to target local",
        at(text, "  production:\n    ", ""),
    )


def test_local_target_without_a_port() -> None:
    text = edit(BASE, "    target: local\n    port: 8082\n", "    target: local\n")
    check(
        text,
        "environments.production",
        "target local needs a port (1024-65535) for its server",
        at(text, "  production:\n    ", ""),
    )


def test_local_target_with_a_kubernetes_section() -> None:
    text = edit(
        BASE,
        "    port: 8082\n",
        "    port: 8082\n    kubernetes:\n      storage_uri: s3://models/iris\n",
    )
    check(
        text,
        "environments.production",
        "a 'kubernetes' section applies to target kubernetes only",
        at(text, "  production:\n    ", ""),
    )


def test_invalid_host() -> None:
    text = edit(BASE, "    port: 8082\n", "    port: 8082\n    host: 'a b'\n")
    check(
        text,
        "environments.production",
        "host 'a b' is not an address or host name",
        at(text, "  production:\n    ", ""),
    )


def test_n_iter_with_grid_search() -> None:
    text = edit(
        BASE,
        "      n_estimators: 10\n",
        "      n_estimators: 10\n    search:\n      method: grid\n      n_iter: 5\n"
        "      space: {max_depth: [3, 5]}\n",
    )
    check(
        text,
        "models.forest.search",
        "n_iter applies to method: random only",
        at(text, "    search:\n      ", ""),
    )


def test_n_iter_with_random_search_is_fine() -> None:
    ok(
        edit(
            BASE,
            "      n_estimators: 10\n",
            "      n_estimators: 10\n    search:\n      method: random\n      n_iter: 5\n"
            "      space: {max_depth: [3, 5]}\n",
        )
    )


def test_chains_sharing_a_cycle_report_it_once() -> None:
    """a -> b -> c -> b and d -> c: one cycle (b, c), reported once, at its first member."""
    text = edit(
        BASE,
        "  production:\n    target: local\n    port: 8082\n    after: staging\n",
        "".join(
            f"  {name}:\n    target: local\n    port: {port}\n    after: {after}\n"
            for name, port, after in (
                ("prod-a", 8083, "prod-b"),
                ("prod-b", 8084, "prod-c"),
                ("prod-c", 8085, "prod-b"),
                ("prod-d", 8086, "prod-c"),
            )
        ),
    )
    found = [d for d in diags(text) if "cycle" in d.message]
    assert [(d.path, d.message) for d in found] == [
        ("environments.prod-b.after", "promotion order has a cycle: prod-b -> prod-c -> prod-b")
    ]


def test_a_malformed_gate_does_not_stop_the_checks_of_later_gates() -> None:
    text = edit(BASE, "  - accuracy >= 0.9\n", "  - accuracy >>= 0.9\n  - rmse < 0.5\n")
    found = sorted((d.path, d.line, d.message) for d in diags(text))
    assert [(path, line) for path, line, _ in found] == [
        ("gates[0]", at(text, "  - ", "accuracy >>=")[0]),
        ("gates[1]", at(text, "  - ", "rmse < 0.5")[0]),
    ]
    assert "'rmse' is a regression metric" in found[1][2]
