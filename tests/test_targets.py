"""The deployment target interface: both targets implement it, and a third one plugs in.

``FilesTarget`` below is a complete target of its own (it "runs" a version by writing a
file under the repository), registered in ``TARGETS`` for the test only: observation,
the plan's rendering and apply's deploy, stop and removal reach it with no change
outside ``mllc/targets/``. Everything else is real: a Git repository, the registry's
tags, the iris spec compiled by mllc.
"""

from __future__ import annotations

import contextlib
import inspect
import subprocess
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import isolate_git

from mllc.apply.journal import Journal
from mllc.apply.run import Executor
from mllc.compile.desired import Desired
from mllc.compile.repository import compile_lifecycle
from mllc.errors import MllcError
from mllc.observe.world import observe_deployments
from mllc.ops.plan import with_manifests
from mllc.policy.promotion import Resolution
from mllc.registry import assignments, register
from mllc.spec.load import load_text_as_spec
from mllc.spec.models import Lifecycle
from mllc.targets import TARGETS, Target, target_for
from mllc.targets.base import Progress
from mllc.types import DeploymentState, RegisteredVersion, RolloutStep

ROOT = Path(__file__).resolve().parent.parent
METHODS = sorted(
    name
    for name, member in inspect.getmembers(Target)
    if inspect.isfunction(member) and not name.startswith("_")
)


class FilesTarget:
    """Runs a version by writing ``.files-target/<name>/<env>``; renders one file to commit."""

    def _state(self, root: Path, name: str, env: str) -> Path:
        return root / ".files-target" / name / env

    def _observed(self, root: Path, name: str, env: str) -> DeploymentState:
        path = self._state(root, name, env)
        version = path.read_text(encoding="utf-8") if path.is_file() else None
        detail = f"written to {path.name}" if version else "nothing written"
        return DeploymentState(name, env, "files", version, version is not None, detail)

    def observe(self, root: Path, spec: Lifecycle, env: str) -> DeploymentState:
        return self._observed(root, spec.metadata.name, env)

    def orphans(self, root: Path, name: str, known: Collection[str]) -> tuple[DeploymentState, ...]:
        return tuple(
            self._observed(root, name, e) for e in self.running(root, name) if e not in known
        )

    def running(self, root: Path, name: str) -> list[str]:
        folder = root / ".files-target" / name
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def render(
        self,
        root: Path,
        spec: Lifecycle,
        env: str,
        version: RegisteredVersion,
        source: str,
        step: RolloutStep | None = None,
    ) -> dict[str, str]:
        return {
            f"deploy/{spec.metadata.name}/{env}/files.txt": f"{version.version} from {source}\n"
        }

    def publish(
        self, root: Path, spec: Lifecycle, env: str, version: RegisteredVersion, progress: Progress
    ) -> None:
        return None

    def deploy(
        self,
        root: Path,
        spec: Lifecycle,
        env: str,
        version: RegisteredVersion,
        files: Sequence[str],
        progress: Progress,
        step: RolloutStep | None = None,
    ) -> dict[str, Any]:
        path = self._state(root, spec.metadata.name, env)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(version.version, encoding="utf-8")
        progress(f"    {env}: wrote {version.version}")
        return {"version": version.version, "files": list(files)}

    def keep(
        self,
        root: Path,
        spec: Lifecycle,
        env: str,
        versions: Sequence[RegisteredVersion],
        progress: Progress,
    ) -> str | None:
        return None

    def stop(self, root: Path, name: str, env: str) -> list[str] | None:
        path = self._state(root, name, env)
        if not path.is_file():
            return None
        path.unlink()
        return [f"{name}/{env}"]


class Misfit(FilesTarget):
    """Every method, but ``stop`` without the environment: not a Target."""

    def stop(self, root: Path, name: str) -> list[str] | None:  # type: ignore[override]
        return None


def mismatches(cls: type) -> list[str]:
    """The interface's methods that ``cls`` lacks or defines with another signature."""
    out = []
    for name in METHODS:
        have = getattr(cls, name, None)
        want = inspect.signature(getattr(Target, name))
        if have is None or inspect.signature(have) != want:
            out.append(name)
    return out


# ------------------------------------------------------------------ the interface


def test_the_interface_has_the_operations_callers_use() -> None:
    assert METHODS == [
        "deploy", "keep", "observe", "orphans", "publish", "render", "running", "stop"
    ]  # fmt: skip


@pytest.mark.parametrize("name", ["local", "kubernetes"])
def test_each_real_target_implements_the_interface_with_its_signatures(name: str) -> None:
    target = target_for(name)
    assert isinstance(target, Target)
    assert mismatches(type(target)) == []


def test_the_signature_check_tells_a_misfit() -> None:
    assert mismatches(FilesTarget) == []
    assert mismatches(Misfit) == ["stop"]


def test_an_unknown_target_is_named_with_the_known_ones() -> None:
    with pytest.raises(
        MllcError, match="no deployment target 'docker' \\(known: local, kubernetes"
    ):
        target_for("docker")


# ------------------------------------------------------------------ a third target


def git(root: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


@pytest.fixture
def files_target(monkeypatch: pytest.MonkeyPatch) -> FilesTarget:
    target = FilesTarget()
    monkeypatch.setitem(TARGETS, "files", target)
    return target


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate_git(tmp_path, monkeypatch)
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "commit", "-q", "--allow-empty", "-m", "initial")
    return root


def on_files_target() -> Desired:
    """The iris lifecycle with its staging environment moved to the ``files`` target."""
    loaded = load_text_as_spec("specs/iris.yaml", (ROOT / "specs/iris.yaml").read_text())
    assert loaded.spec is not None
    want = compile_lifecycle(loaded.spec, "specs/iris.yaml")
    # The spec's vocabulary does not know the name yet: set it past validation.
    envs = {
        "staging": want.lifecycle.environments["staging"].model_copy(update={"target": "files"})
    }
    spec = loaded.spec.model_copy(update={"environments": envs})
    record = want.lifecycle.model_copy(update={"environments": envs})
    return Desired(want.name, want.spec_file, want.files, record, spec)


def registered(root: Path) -> RegisteredVersion:
    metrics = {"test": {"accuracy": 0.97, "f1_macro": 0.96}}
    return register(root, "iris", git(root, "rev-parse", "HEAD"), "0" * 32, metrics, {})


def test_observation_asks_the_environments_target_and_every_target_for_orphans(
    repo: Path, files_target: FilesTarget
) -> None:
    want = on_files_target()
    assert observe_deployments(repo, want) == (
        DeploymentState("iris", "staging", "files", None, False, "nothing written"),
    )
    for env, version in (("staging", "v1.0.0"), ("qa", "v0.9.0")):  # qa: not in the spec
        (repo / ".files-target/iris").mkdir(parents=True, exist_ok=True)
        (repo / ".files-target/iris" / env).write_text(version)
    assert observe_deployments(repo, want) == (
        DeploymentState("iris", "staging", "files", "v1.0.0", True, "written to staging"),
        DeploymentState("iris", "qa", "files", "v0.9.0", True, "written to qa"),
    )


def test_the_plan_adds_the_files_the_target_renders(repo: Path, files_target: FilesTarget) -> None:
    want = on_files_target()
    version = registered(repo)
    planned = with_manifests(repo, want, {"staging": Resolution("staging", version, "pinned")})
    added = {p: t for p, t in planned.files.items() if p not in want.files}
    assert added == {"deploy/iris/staging/files.txt": "v1.0.0 from specs/iris.yaml\n"}
    # nothing resolved, nothing rendered
    assert (
        with_manifests(repo, want, {"staging": Resolution("staging", None, "none")}).files
        == want.files
    )


def test_apply_commits_what_the_target_renders_deploys_and_stops_it(
    repo: Path, files_target: FilesTarget
) -> None:
    want = on_files_target()
    said: list[str] = []
    ex = Executor(repo, Journal(repo), said.append, contextlib.ExitStack())
    assert ex.deploy(want, "staging", "create") == {"version": None}  # nothing registered
    assert len(said) == 1 and said[0].startswith("    staging: nothing to deploy (")
    said.clear()
    version = registered(repo)
    done = ex.deploy(want, "staging", "create")
    assert done == {"version": "v1.0.0", "files": ["deploy/iris/staging/files.txt"]}
    # rendered, written and committed before the target deployed
    assert git(repo, "show", "HEAD:deploy/iris/staging/files.txt") == "v1.0.0 from specs/iris.yaml"
    assert git(repo, "log", "-1", "--format=%s") == "mllc apply: deploy iris v1.0.0 to staging"
    assert (repo / ".files-target/iris/staging").read_text() == version.version
    assert [a.version for a in assignments(repo, "iris")["staging"]] == ["v1.0.0"]
    assert said == ["    staging: wrote v1.0.0"]

    # an environment removed from the spec: whichever target runs it stops it
    files_target.deploy(repo, want.spec, "qa", version, [], said.append)
    assert ex.deploy(want, "qa", "delete") == {"stopped": "qa"}
    assert said[-1] == "    qa: stopped server pid iris/qa"
    assert files_target.running(repo, "iris") == ["staging"]

    # a removed lifecycle stops everything its targets run
    ex.delete_lifecycle("iris")
    assert files_target.running(repo, "iris") == []
    assert "    staging: stopped its server" in said
