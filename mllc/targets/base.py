"""What every deployment target answers, with the same signatures: the :class:`Target`.

A target is where an environment's version runs (``environments.<env>.target`` in the
spec). Observation, the plan and apply only talk to targets through this interface, by
way of the registry in :mod:`mllc.targets`, so adding a target is one module under
``mllc/targets/`` and one entry there (plus its name in the spec's vocabulary).

The arguments every target gets are the same: the repository ``root``, the lifecycle's
``name``, the environment ``env``, its spec entry ``cfg`` and the whole ``spec``. What a
target does not need it ignores. Code shared by several targets lives here: targets do
not import each other.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from mllc.dvcremote import default_remote, fetch
from mllc.dvcrepo import cache_object
from mllc.errors import MllcError
from mllc.spec.models import Lifecycle
from mllc.types import DeploymentState, RegisteredVersion, RolloutStep

Progress = Callable[[str], None]


@runtime_checkable
class Target(Protocol):
    """One kind of place a version runs in: observe it, render its files, deploy, stop."""

    def observe(self, root: Path, spec: Lifecycle, env: str) -> DeploymentState:
        """What runs for ``spec``'s ``env`` now. Never raises for the world's sake: what
        cannot be reached is a state with ``reachable=False`` and a ``detail``."""
        ...

    def orphans(self, root: Path, name: str, known: Collection[str]) -> tuple[DeploymentState, ...]:
        """What this target still runs for environments of ``name`` not in ``known`` (the
        spec removed them), as far as the target can tell without the spec; () if none."""
        ...

    def running(self, root: Path, name: str) -> list[str]:
        """The environments of ``name`` where this target has something :meth:`stop` would
        stop, in name order (a removed lifecycle stops them all)."""
        ...

    def render(
        self,
        root: Path,
        spec: Lifecycle,
        env: str,
        version: RegisteredVersion,
        source: str,
        step: RolloutStep | None = None,
    ) -> dict[str, str]:
        """The files ``env`` running ``version`` needs in the repository (path -> text,
        ``source`` is the spec's path), all under ``deploy/<name>/<env>/``: planned with the
        other generated files, written and committed by apply before :meth:`deploy` (which
        also removes the files there it no longer renders). {} for a target that needs
        none. ``root`` is read only (e.g. the Git remote a GitOps controller clones).
        With ``step`` (a rollout in progress), the files run ``step.stable`` and
        ``step.candidate`` side by side with the candidate at ``step.weight`` percent;
        ``version`` is then the candidate."""
        ...

    def publish(
        self, root: Path, spec: Lifecycle, env: str, version: RegisteredVersion, progress: Progress
    ) -> None:
        """Put ``version``'s model where ``env`` reads it, before apply commits what
        :meth:`render` gave: with GitOps that commit is the deployment, so it must never
        name a model that is not there. Repeatable; nothing for a target that reads the
        model from this machine. Raises MllcError."""
        ...

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
        """Make ``env`` run ``version``; what the journal records of it. ``files`` are the
        paths :meth:`render` gave, already written and committed. With ``step``, run the
        rollout step instead (``version`` is ``step.candidate``). Raises MllcError."""
        ...

    def keep(
        self,
        root: Path,
        spec: Lifecycle,
        env: str,
        versions: Sequence[RegisteredVersion],
        progress: Progress,
    ) -> str | None:
        """No version is deployable: whatever runs keeps running, but with the settings the
        spec asks for. The version restarted to get them, or None when nothing changed."""
        ...

    def stop(self, root: Path, name: str, env: str) -> list[str] | None:
        """Stop what runs for ``name``/``env``. None: this target runs nothing there; else
        what it stopped (empty when it had already exited and was only cleared away)."""
        ...


def model_file(root: Path, md5: str) -> Path:
    """The version's binary in the DVC cache (content-addressed: its name is its hash),
    fetched from the default DVC remote first when this clone's cache lacks it (another
    machine). Whoever loads it checks that its bytes hash to ``md5``."""
    path = cache_object(root, md5)
    if not path.is_file():
        fetch(root, [md5], what=f"the model {md5[:12]} from")
    if not path.is_file():
        where = " nor on the default DVC remote" if default_remote(root) else ""
        raise MllcError(
            f"the model {md5[:12]} is not in the local DVC cache (.dvc/cache){where}: "
            "run 'dvc pull' or 'dvc repro' to get it"
        )
    return path
