"""``mllc plan --format markdown``: the PR comment, golden-tested; its metrics from a real repo."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mllc.compile.workflow import MARKER
from mllc.mdtext import escape
from mllc.plan.markdown import MetricDeltas, markdown, metric_deltas
from mllc.plan.model import Binding, Change, Plan, summarize
from mllc.registry import register

GOLDEN = Path(__file__).resolve().parent / "golden" / "markdown"
MD5 = "0123456789abcdef0123456789abcdef"


def _plan(changes: list[Change], lifecycles: tuple[str, ...] = ("churn", "iris")) -> Plan:
    return Plan(
        mllc_version="0.0.0",
        lifecycles=lifecycles,
        changes=tuple(changes),
        summary=summarize(changes),
        binding=Binding(
            git_commit=None,
            specs={},
            files={},
            locks={},
            registry={},
            deployments={"iris/staging": "v1.0.0", "iris/production": None},
        ),
    )


CHANGES = [
    Change(
        address="iris/file/pipelines/iris/params.yaml",
        lifecycle="iris",
        kind="file",
        action="update",
        category="retrain",
        reasons=("models.forest.params.n_estimators 200 → 300",),
    ),
    Change(
        address="iris/stage/train@forest",
        lifecycle="iris",
        kind="stage",
        action="run",
        category="retrain",
        reasons=("params changed: models.forest.params.n_estimators",),
    ),
    Change(
        address="iris/model",
        lifecycle="iris",
        kind="model",
        action="create",
        category="retrain",
        reasons=("register the model the pipeline selects, if it is new",),
        known_after_apply=("model hash", "version: v1.1.0 if the hash is new"),
    ),
    Change(
        address="iris/gates",
        lifecycle="iris",
        kind="gates",
        action="update",
        category="re-evaluate",
        reasons=("gate added: accuracy >= 0.95", "v1.0.0 fails: accuracy 0.93 < 0.95 | strict"),
    ),
    Change(
        address="iris/deployment/production",
        lifecycle="iris",
        kind="deployment",
        action="create",
        category="redeploy",
        reasons=("blocked: <staging> must run v1.1.0 first",),
        blocking=True,
    ),
    Change(
        address="churn/metadata",
        lifecycle="churn",
        kind="lifecycle",
        action="update",
        category="metadata",
        reasons=("metadata.description old → new",),
    ),
]
DELTAS = MetricDeltas(
    running={"iris": {"staging": ("v1.0.0", {"accuracy": 0.95, "f1_macro": 0.9, "other": 1.0})}},
    new={"iris": {"accuracy": 0.97, "f1_macro": 0.9, "log_loss": 0.2}},
)


def check_golden(name: str, text: str, regen: bool) -> None:
    path = GOLDEN / name
    if regen:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{path}: rerun with --regen-golden"


@pytest.mark.parametrize(
    ("name", "plan", "deltas"),
    [
        ("changes.md", _plan(CHANGES), DELTAS),
        ("changes-no-metrics.md", _plan(CHANGES), None),
        ("no-changes.md", _plan([]), DELTAS),
        (
            "unblocked.md",
            _plan([c for c in CHANGES if not c.blocking], ("churn", "diabetes", "iris")),
            None,
        ),
    ],
)
def test_golden(name: str, plan: Plan, deltas: MetricDeltas | None, regen_golden: bool) -> None:
    check_golden(name, markdown(plan, deltas), regen_golden)


def test_summary_first_and_blocked_first() -> None:
    text = markdown(_plan(CHANGES), DELTAS)
    lines = text.splitlines()
    assert lines[0] == MARKER
    assert "**Plan: 2 to add, 4 to change, 0 to destroy.**" in lines
    blocked = lines.index(next(x for x in lines if x.startswith("❌ **iris/deployment")))
    iris = lines.index("- ❌ **iris** — retrain, re-evaluate, redeploy")
    assert blocked < iris < lines.index("- **churn** — metadata")
    assert lines.index("- **churn** — metadata") < lines.index("<details><summary>iris</summary>")
    assert "&lt;staging&gt; must run" in text and "<staging>" not in text
    assert "  - accuracy 0.95 → 0.97 (+0.02)" in lines
    assert "  - f1_macro 0.9 → 0.9 (±0)" in lines
    assert "log_loss" not in text and "other" not in text  # only metrics on both sides


def test_no_metrics_says_nothing() -> None:
    assert "→ 0.97" not in markdown(_plan(CHANGES))
    assert "metrics" not in markdown(_plan(CHANGES)).lower()


def test_escape() -> None:
    assert escape("a | b <c> & d\ne") == "a \\| b &lt;c&gt; &amp; d e"


def test_metric_deltas_from_registry_and_metrics_json(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "README").write_text("x\n", encoding="utf-8")
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=tmp_path, check=True)
    register(tmp_path, "iris", "HEAD", MD5, {"test": {"accuracy": 0.9, "f1_macro": 0.8}}, {})
    (tmp_path / "pipelines" / "iris").mkdir(parents=True)
    (tmp_path / "pipelines" / "iris" / "metrics.json").write_text(
        json.dumps({"metric": "f1_macro", "test": {"accuracy": 0.96, "f1_macro": 0.85}}),
        encoding="utf-8",
    )
    deltas = metric_deltas(tmp_path, _plan(CHANGES))
    assert deltas.new == {"iris": {"accuracy": 0.96, "f1_macro": 0.85}}
    assert deltas.running == {"iris": {"staging": ("v1.0.0", {"accuracy": 0.9, "f1_macro": 0.8})}}
    assert "  - accuracy 0.9 → 0.96 (+0.06)" in markdown(_plan(CHANGES), deltas).splitlines()


def test_metric_deltas_without_anything(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert metric_deltas(tmp_path, _plan(CHANGES)) == MetricDeltas()
