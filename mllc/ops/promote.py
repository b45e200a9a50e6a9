"""Promotion and rollback as pull requests: pin a version in a spec, on a new branch.

``promote`` and ``rollback`` never deploy. They check the version the way
``mllc apply`` would (gates on its test metrics, the environment's ``after`` and
``require`` rules, through :func:`mllc.policy.promotion.resolve_environment`), refuse up front when
apply would be blocked, then change one line of the spec (:mod:`mllc.spec.edit`)
and commit that file alone on a new branch ``mllc/<action>-NAME-VERSION-ENV``
from HEAD. The commit is built with a private index, ``git commit-tree`` and a
create-only ``git update-ref``: the user's branch, index and working tree are
not touched. Merging the branch and running ``mllc apply`` deploys it.
"""

from __future__ import annotations

import difflib
import functools
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mllc import gitcmd
from mllc.errors import MllcError
from mllc.gitcmd import head
from mllc.policy.gates import GateResult
from mllc.policy.promotion import Promotion, Resolution, held_out_metrics, resolve_environment
from mllc.policy.replay import ReplayVerdict, nothing_to_replay
from mllc.registry import assignments, list_versions
from mllc.replay import checker
from mllc.spec.edit import Edit, set_env_model
from mllc.spec.load import find_config, load_estimators, load_text_as_spec
from mllc.spec.models import Lifecycle
from mllc.spec.repository import did_you_mean, find_lifecycle, relative_path
from mllc.types import RegisteredVersion


@dataclass(frozen=True)
class Proposal:
    """A branch carrying a one-line spec change, and what was checked to allow it."""

    action: str  # promote | rollback
    name: str
    env: str
    version: str
    previous: str  # the spec's model before the edit ("latest" or a version)
    branch: str
    commit: str
    spec_file: str  # repo-relative
    edit: Edit
    gates: tuple[GateResult, ...]
    rules: tuple[str, ...]
    message: str
    replayed: tuple[str, ...] = ()  # what the replay of wins_on_replay did, as it went


# ----------------------------------------------------------------------------- git


def repo_root(start: Path) -> Path:
    proc = gitcmd.run(start, "rev-parse", "--show-toplevel")
    if proc.returncode != 0:
        raise MllcError(f"{start.resolve()} is not in a Git repository")
    return Path(os.fsdecode(proc.stdout.strip()))


def _branch_exists(root: Path, branch: str) -> bool:
    proc = gitcmd.run(root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
    return proc.returncode == 0


def _head_text(root: Path, parent: str, spec_file: str) -> tuple[str, str]:
    """The spec's text at HEAD and its file mode; refuses uncommitted changes to it."""
    listed = gitcmd.git(root, "ls-tree", parent, "--", spec_file)
    if not listed:
        raise MllcError(f"{spec_file} is not committed: commit it first")
    mode = listed.split()[0]
    if gitcmd.run(root, "diff", "--quiet", "HEAD", "--", spec_file).returncode != 0:
        raise MllcError(
            f"{spec_file} has uncommitted changes: commit or stash them first "
            "(the branch is made from HEAD)"
        )
    blob = gitcmd.output(root, "cat-file", "blob", f"{parent}:{spec_file}")
    try:
        return blob.decode("utf-8"), mode
    except UnicodeDecodeError:
        raise MllcError(f"{spec_file} is not UTF-8") from None


def commit_on_branch(
    root: Path, parent: str, branch: str, spec_file: str, mode: str, text: str, message: str
) -> str:
    """Commit ``text`` as ``spec_file`` on top of ``parent`` as new branch ``branch``."""
    blob = gitcmd.git(
        root, "hash-object", "-w", "--no-filters", "--stdin", stdin=text.encode("utf-8")
    )
    with tempfile.TemporaryDirectory(prefix="mllc-promote-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        gitcmd.git(root, "read-tree", parent, env=env)
        gitcmd.git(root, "update-index", "--cacheinfo", f"{mode},{blob},{spec_file}", env=env)
        tree = gitcmd.git(root, "write-tree", env=env)
    commit = gitcmd.git(root, "commit-tree", tree, "-p", parent, "-F", "-", stdin=message.encode())
    # Create-only: the all-zero old value refuses a branch that appeared meanwhile.
    gitcmd.git(root, "update-ref", "-m", "mllc promote", f"refs/heads/{branch}", commit, "0" * 40)
    return commit


# -------------------------------------------------------------------------- checks


def _check_env(spec: Lifecycle, env: str) -> None:
    envs = list(spec.environments)
    if env not in envs:
        raise MllcError(
            f"lifecycle {spec.metadata.name!r} has no environment {env!r} "
            f"(environments: {', '.join(envs) or 'none'})" + did_you_mean(env, envs)
        )


def _metric(version: RegisteredVersion, metric: str) -> str:
    value = held_out_metrics(version).get(metric)
    return f"{value:.4g}" if isinstance(value, int | float) else "unknown"


def _rules_text(
    rules: Promotion, version: RegisteredVersion, env: str, replay: ReplayVerdict | None = None
) -> tuple[str, ...]:
    """What the promotion rules checked, one line each (they passed)."""
    out = []
    if rules.after:
        out.append(f"after: {version.version} has run in {rules.after}")
    if rules.beats_champion:
        champ = rules.champion
        if champ is None:
            out.append(f"beats_champion: {env} runs no version yet, nothing to beat")
        elif champ.version == version.version:
            out.append(f"beats_champion: {version.version} is {env}'s current version")
        else:
            mine, theirs = _metric(version, rules.metric), _metric(champ, rules.metric)
            out.append(f"beats_champion: {rules.metric} {mine} vs {champ.version}'s {theirs}")
    if rules.wins_on_replay:
        if replay is not None:
            out.append(replay.text)
        elif rules.champion is None:
            out.append(nothing_to_replay(env).text)
        else:
            out.append(f"wins_on_replay: {version.version} is {env}'s current version")
    return tuple(out)


def check(
    root: Path,
    spec: Lifecycle,
    env: str,
    version: str,
    progress: Callable[[str], None] = lambda _line: None,
) -> tuple[Resolution, tuple[str, ...]]:
    """Resolve ``version`` for ``env`` exactly as apply would (wins_on_replay: replaying
    what ``env`` captured, as apply does); MllcError when it is blocked."""
    name = spec.metadata.name
    cfg = spec.environments[env]
    gates = list(spec.gates)
    versions = list_versions(root, name)
    replay = checker(root, spec, env, progress)
    history = functools.partial(assignments, root, name, rollouts=True)  # rolled back: skipped
    res, rules = resolve_environment(
        env, cfg, versions, gates, spec.problem.metric, history, version, replay
    )
    if res.blocked or res.version is None:
        raise MllcError(f"{name} {version} cannot go to {env}: {res.blocked or res.reason}")
    return res, _rules_text(rules, res.version, env, res.replay)


# ---------------------------------------------------------------------- commands


def _propose(
    root: Path,
    paths: Sequence[str],
    action: str,
    name: str,
    env: str,
    version: str | None,
) -> Proposal:
    file, spec = find_lifecycle(paths, name, root)
    _check_env(spec, env)
    parent = head(root)
    if parent is None:
        raise MllcError("the repository has no commit yet")
    spec_file = relative_path(file, root)
    text, mode = _head_text(root, parent, spec_file)  # = the spec loaded: no local changes
    if version is None:
        version = previous_version(root, name, env)
    current = spec.environments[env].model
    if current == version:
        raise MllcError(f"{env} already pins {name} {version} (in {file}): nothing to change")
    replayed: list[str] = []
    res, rules = check(root, spec, env, version, lambda line: replayed.append(line.strip()))
    branch = f"mllc/{action}-{name}-{version}-{env}"
    if _branch_exists(root, branch):
        raise MllcError(f"branch {branch} already exists: delete it or push it as it is")
    edit = set_env_model(text, env, version)
    _verify(root, spec_file, edit, text, env, version)
    title = (
        f"promote {name} {version} to {env}"
        if action == "promote"
        else f"rollback {name} {env} to {version}"
    )
    body = [f"{spec_file}: environments.{env}.model: {current} -> {version}", ""]
    body.append(f"Gates ({version} test metrics):")
    body += [f"  {g.text()}" for g in res.gates] or ["  none"]
    body.append("Promotion rules:")
    body += [f"  {r}" for r in rules] or ["  none"]
    message = "\n".join([title, "", *body]) + "\n"
    commit = commit_on_branch(root, parent, branch, spec_file, mode, edit.text, message)
    return Proposal(
        action, name, env, version, current, branch, commit, spec_file, edit, res.gates, rules,
        message, tuple(replayed),
    )  # fmt: skip


def _verify(root: Path, spec_file: str, edit: Edit, before: str, env: str, version: str) -> None:
    """The edited text is a valid spec pinning ``version``, one line away from ``before``."""
    estimators, _ = load_estimators(find_config((root / spec_file).parent))
    result = load_text_as_spec(spec_file, edit.text, estimators)
    if result.spec is None or result.diagnostics:
        shown = "; ".join(d.render() for d in result.diagnostics)
        raise MllcError(f"the edited {spec_file} would not validate: {shown}")
    if result.spec.environments[env].model != version:  # pragma: no cover - a bug in specedit
        raise MllcError(f"the edited {spec_file} does not pin {version} for {env}")
    old, new = before.splitlines(), edit.text.splitlines()
    diff = [d for d in difflib.ndiff(old, new) if d[:1] in "+-"]
    if len(diff) != (1 if edit.old is None else 2):  # pragma: no cover - a bug in specedit
        raise MllcError(f"the edit of {spec_file} would change more than one line")


def previous_version(root: Path, name: str, env: str) -> str:
    """The version ``env`` ran before its current one, from the GTO stage history."""
    history = [a for a in assignments(root, name).get(env, []) if not a.unassign and a.version]
    if not history:
        raise MllcError(f"{name} has never been deployed to {env}: nothing to roll back to")
    current = history[-1].version
    for event in reversed(history):
        if event.version != current:
            return str(event.version)
    raise MllcError(
        f"{env} has only ever run {name} {current}: no previous version to roll back to"
    )


def promote(root: Path, paths: Sequence[str], name: str, version: str, env: str) -> Proposal:
    """A branch ``mllc/promote-NAME-VERSION-ENV`` pinning ``version`` in ``env``."""
    return _propose(root, paths, "promote", name, env, version)


def rollback(root: Path, paths: Sequence[str], name: str, env: str) -> Proposal:
    """A branch ``mllc/rollback-NAME-VERSION-ENV`` pinning the version ``env`` ran before."""
    return _propose(root, paths, "rollback", name, env, None)


def render(p: Proposal) -> str:
    lines = [
        *p.replayed,
        f"Created branch {p.branch} ({p.commit[:12]}): {p.message.splitlines()[0]}",
        f"  {p.spec_file}:{p.edit.line}",
    ]
    if p.edit.old is not None:
        lines.append(f"  - {p.edit.old}")
    lines.append(f"  + {p.edit.new}")
    lines.append("Gates:" + ("" if p.gates else " none"))
    lines += [f"  {g.text()}" for g in p.gates]
    lines.append("Promotion rules:" + ("" if p.rules else " none"))
    lines += [f"  {r}" for r in p.rules]
    lines += [
        "",
        "Your branch and working tree are unchanged. Next:",
        f"  git push origin {p.branch}",
        f"  then open a pull request from {p.branch}; once merged, 'mllc apply' deploys it.",
    ]
    return "\n".join(lines) + "\n"
