"""mllc promote / rollback: a one-line spec edit committed on a new branch, checked like apply.

Real Git repositories in tmp; the registry is built directly with ``register`` and
``assign`` (one commit per version, test metrics chosen to pass or fail the gates),
no training. The success paths and a refusal run through the real CLI.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mllc.errors import MllcError
from mllc.ops.promote import promote, rollback
from mllc.registry import assign, register
from mllc.spec.edit import SpecEditError, set_env_model

ROOT = Path(__file__).resolve().parent.parent
NAME = "iris"
ENVIRONMENTS = """\
environments:                   # in promotion order
  staging:
    target: local               # an inference server on this machine
    model: latest               # newest passing version
    port: 8081
  production:
    target: local
    model: "v1.0.0"             # pinned by hand
    port: 8082
    after: staging              # a version must have run in staging first
  canary:
    # no model key: defaults to latest
    target: local
    port: 8083
"""
METRICS = {
    "v1.0.0": {"accuracy": 0.95, "f1_macro": 0.9},
    "v1.1.0": {"accuracy": 0.97, "f1_macro": 0.93},
    "v1.2.0": {"accuracy": 0.8, "f1_macro": 0.78},  # fails accuracy >= 0.9
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def spec_text() -> str:
    text = (ROOT / "specs" / "iris.yaml").read_text(encoding="utf-8")
    return text[: text.index("environments:")] + ENVIRONMENTS


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    (path / "specs").mkdir(parents=True)
    (path / "specs" / "iris.yaml").write_text(spec_text(), encoding="utf-8")
    (path / "notes.txt").write_text("work in progress\n", encoding="utf-8")
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "specs")
    git(path, "commit", "-qm", "spec")
    for version, metrics in METRICS.items():
        git(path, "commit", "-q", "--allow-empty", "-m", f"train {version}")
        md5 = hashlib.md5(version.encode()).hexdigest()
        got = register(path, NAME, git(path, "rev-parse", "HEAD"), md5, {"test": metrics}, {})
        assert got.version == version
    return path


def mllc(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mllc", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=120,
    )


def state(repo: Path) -> tuple[str, str, str, str]:
    """What promote must leave alone: current branch, HEAD, status, the spec's bytes."""
    spec = (repo / "specs" / "iris.yaml").read_text(encoding="utf-8")
    head = git(repo, "rev-parse", "HEAD")
    return git(repo, "symbolic-ref", "HEAD"), head, git(repo, "status", "--porcelain"), spec


def changed_lines(repo: Path, branch: str) -> tuple[list[str], list[str]]:
    diff = git(repo, "diff", "--unified=0", "HEAD", branch).splitlines()
    minus = [d for d in diff if d.startswith("-") and not d.startswith("---")]
    plus = [d for d in diff if d.startswith("+") and not d.startswith("+++")]
    return minus, plus


def branches(repo: Path) -> list[str]:
    return git(repo, "branch", "--list", "mllc/*", "--format=%(refname:short)").split()


def specs(repo: Path) -> list[str]:
    return [str(repo / "specs")]


# ----------------------------------------------------------------------------- CLI


def test_promote_cli_makes_a_one_line_branch_and_leaves_the_tree_alone(repo: Path) -> None:
    assign(repo, NAME, "v1.1.0", "staging")
    before = state(repo)
    proc = mllc(repo, "promote", NAME, "v1.1.0", "--to", "production")
    assert proc.returncode == 0, proc.stderr
    branch = "mllc/promote-iris-v1.1.0-production"
    assert f"git push origin {branch}" in proc.stdout
    assert "pull request" in proc.stdout
    assert state(repo) == before  # branch, HEAD, status (untracked notes.txt) and the spec
    assert branches(repo) == [branch]
    minus, plus = changed_lines(repo, branch)
    assert minus == ['-    model: "v1.0.0"             # pinned by hand']
    assert plus == ['+    model: "v1.1.0"             # pinned by hand']
    assert git(repo, "diff", "--name-only", "HEAD", branch) == "specs/iris.yaml"
    assert git(repo, "rev-parse", f"{branch}^") == before[1]
    text = git(repo, "show", f"{branch}:specs/iris.yaml")
    assert "# A model's whole lifecycle, in one file." in text  # comments kept
    message = git(repo, "log", "-1", "--format=%B", branch).splitlines()
    assert message[0] == "promote iris v1.1.0 to production"
    assert "  accuracy 0.97 >= 0.9" in message
    assert "  f1_macro 0.93 >= 0.85" in message
    assert "  after: v1.1.0 has run in staging" in message


def test_rollback_cli_returns_to_the_previous_version(repo: Path) -> None:
    for version in ("v1.0.0", "v1.1.0", "v1.1.0"):
        assign(repo, NAME, version, "staging")
    before = state(repo)
    proc = mllc(repo, "rollback", NAME, "--env", "staging")
    assert proc.returncode == 0, proc.stderr
    branch = "mllc/rollback-iris-v1.0.0-staging"
    assert f"git push origin {branch}" in proc.stdout
    assert state(repo) == before
    minus, plus = changed_lines(repo, branch)
    assert minus == ["-    model: latest               # newest passing version"]
    assert plus == ["+    model: v1.0.0               # newest passing version"]
    first = git(repo, "log", "-1", "--format=%s", branch)
    assert first == "rollback iris staging to v1.0.0"


def test_cli_refuses_a_failing_gate_with_the_numbers(repo: Path) -> None:
    proc = mllc(repo, "promote", NAME, "v1.2.0", "--to", "staging")
    assert proc.returncode == 1
    assert "accuracy 0.8 < 0.9 (gate: accuracy >= 0.9)" in proc.stderr
    assert "f1_macro 0.78 < 0.85 (gate: f1_macro >= 0.85)" in proc.stderr
    assert branches(repo) == []


# ----------------------------------------------------------------------------- API


def test_after_violated_is_refused(repo: Path) -> None:
    with pytest.raises(MllcError, match=r"v1\.1\.0 has not run in staging yet"):
        promote(repo, specs(repo), NAME, "v1.1.0", "production")
    assert branches(repo) == []


def test_missing_model_key_inserts_one_line(repo: Path) -> None:
    proposal = promote(repo, specs(repo), NAME, "v1.0.0", "canary")
    assert proposal.previous == "latest" and proposal.edit.old is None
    minus, plus = changed_lines(repo, proposal.branch)
    assert minus == [] and plus == ["+    model: v1.0.0"]
    lines = git(repo, "show", f"{proposal.branch}:specs/iris.yaml").splitlines()
    at = lines.index("  canary:")
    assert lines[at + 1 : at + 3] == ["    model: v1.0.0", "    # no model key: defaults to latest"]


def test_rollback_without_a_previous_version(repo: Path) -> None:
    with pytest.raises(MllcError, match="never been deployed to staging"):
        rollback(repo, specs(repo), NAME, "staging")
    assign(repo, NAME, "v1.1.0", "staging")
    with pytest.raises(MllcError, match=r"only ever run iris v1\.1\.0: no previous version"):
        rollback(repo, specs(repo), NAME, "staging")
    assert branches(repo) == []


def test_rollback_to_a_version_failing_todays_gates_is_refused(repo: Path) -> None:
    assign(repo, NAME, "v1.2.0", "staging")  # assign records history; it checks no gate
    assign(repo, NAME, "v1.1.0", "staging")
    with pytest.raises(MllcError, match=r"accuracy 0\.8 < 0\.9 \(gate: accuracy >= 0\.9\)"):
        rollback(repo, specs(repo), NAME, "staging")
    assert branches(repo) == []


def test_refusals(repo: Path) -> None:
    with pytest.raises(MllcError, match=r"already pins iris v1\.0\.0"):
        promote(repo, specs(repo), NAME, "v1.0.0", "production")
    with pytest.raises(MllcError, match=r"v9\.0\.0 is not registered"):
        promote(repo, specs(repo), NAME, "v9.0.0", "staging")
    with pytest.raises(MllcError, match="did you mean 'production'"):
        promote(repo, specs(repo), NAME, "v1.0.0", "prodution")
    with pytest.raises(MllcError, match="did you mean 'iris'"):
        promote(repo, specs(repo), "irs", "v1.0.0", "staging")
    promote(repo, specs(repo), NAME, "v1.0.0", "staging")
    with pytest.raises(MllcError, match="already exists"):
        promote(repo, specs(repo), NAME, "v1.0.0", "staging")
    (repo / "specs" / "iris.yaml").write_text(spec_text() + "# edited\n", encoding="utf-8")
    with pytest.raises(MllcError, match="uncommitted changes"):
        promote(repo, specs(repo), NAME, "v1.1.0", "staging")
    assert branches(repo) == ["mllc/promote-iris-v1.0.0-staging"]


# ------------------------------------------------------------------------ specedit


def test_specedit_keeps_quote_style_and_line_endings() -> None:
    text = "environments:\r\n  a:\r\n    model: 'latest'  # c\r\n    target: local\r\n"
    edit = set_env_model(text, "a", "v1.2.3")
    assert edit.text == text.replace("'latest'", "'v1.2.3'")
    text = "environments:\r\n  a:\r\n    target: local\r\n"
    edit = set_env_model(text, "a", "v1.2.3")
    assert edit.text == "environments:\r\n  a:\r\n    model: v1.2.3\r\n    target: local\r\n"


def test_specedit_flow_style() -> None:
    # a model in a flow mapping is still one scalar: replaced in place
    text = "environments:\n  a: {target: local, model: v1.0.0}\n"
    assert set_env_model(text, "a", "v2.0.0").text == text.replace("v1.0.0", "v2.0.0")
    with pytest.raises(SpecEditError, match="flow style"):
        set_env_model("environments:\n  a: {target: local}\n", "a", "v2.0.0")
    with pytest.raises(SpecEditError, match="flow style"):
        set_env_model("environments: {a: {target: local}}\n", "a", "v2.0.0")
    with pytest.raises(SpecEditError, match="edit it by hand"):
        set_env_model("environments:\n  a:\n    model: !!str v1.0.0\n", "a", "v2.0.0")


def test_beats_champion_is_checked_and_recorded(repo: Path) -> None:
    text = spec_text().replace("    after: staging ", "    require: [beats_champion]")
    text = text.replace('model: "v1.0.0"', "model: latest  ")
    (repo / "specs" / "iris.yaml").write_text(text, encoding="utf-8")
    git(repo, "commit", "-qam", "beats_champion in production")
    assign(repo, NAME, "v1.0.0", "production")
    proposal = promote(repo, specs(repo), NAME, "v1.1.0", "production")
    assert proposal.rules == ("beats_champion: f1_macro 0.93 vs v1.0.0's 0.9",)
    assert "  beats_champion: f1_macro 0.93 vs v1.0.0's 0.9" in proposal.message.splitlines()
    assign(repo, NAME, "v1.1.0", "production")
    with pytest.raises(MllcError, match=r"f1_macro 0\.9 does not beat v1\.1\.0's 0\.93"):
        promote(repo, specs(repo), NAME, "v1.0.0", "production")
