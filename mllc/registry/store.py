"""Read and write the registry in a Git repository: versions and environment assignments.

Every read is ONE ``git for-each-ref`` process over ``refs/tags/`` (name, peeled target,
date and message of every tag), parsed in Python; no process per tag, no GitPython.
Writes are ``git tag -a`` only. Nothing here deletes a tag: registry history is kept.

Atomicity of a write: ``git tag -a`` first writes the tag object (content-addressed,
to a temporary file renamed into place), then updates ``refs/tags/<tag>`` in a ref
transaction: it creates ``<ref>.lock`` exclusively (O_CREAT|O_EXCL), writes the new
object id into it and rename(2)s it over the ref, with the expected old value "absent"
(``git tag`` without ``-f`` passes the null id), so a concurrent writer of the same
name fails instead of overwriting. A process killed at any point therefore leaves
either no ref (at most an unreachable tag object that ``git gc`` prunes) or the
complete tag; never a ref to a partial message. What a SIGKILL can leave behind is a
stale ``<ref>.lock``; Git never removes it itself, so a later write of that tag fails
and the error says which file to remove (tests/test_registry.py kills ``git tag`` at
random moments and checks exactly this).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

from mllc import __version__, gitcmd, semver
from mllc.dvcrepo import cache_object
from mllc.errors import MllcError
from mllc.names import is_dns_label
from mllc.policy.rollout import split_stage
from mllc.registry import tags
from mllc.registry.tags import Registration, TagName, TagRecord
from mllc.types import Assignment, RegisteredVersion

# Attempts when another writer takes the tag name between our read and our write.
_ATTEMPTS = 5
# Keys of an assignment message that mllc owns; `message_extra` may not override them.
_ASSIGN_RESERVED = frozenset({"mllc_version", "version"})


class RegistryError(MllcError):
    """The registry could not be read or written (bad name, missing commit, Git failure)."""

    message = "registry error"


# ---------------------------------------------------------------------------- git


def _git(root: Path, *args: str) -> CompletedProcess[bytes]:
    """A read: no identity, so it starts no ``git var`` (only :func:`_create_tag` writes)."""
    return gitcmd.run(root, *args, missing=RegistryError)


def _stderr(proc: CompletedProcess[bytes]) -> str:
    return proc.stderr.decode("utf-8", "replace").strip()


def _read_tags(root: Path) -> list[TagRecord]:
    # All of refs/tags, filtered in Python: for-each-ref globs do not let `*` cross "/",
    # and GTO stage names may contain "/", so a pattern could miss tags that GTO counts.
    proc = _git(root, "for-each-ref", f"--format={tags.FOR_EACH_REF_FORMAT}", "refs/tags/")
    if proc.returncode != 0:
        raise RegistryError(f"cannot read the registry (Git tags) in {root}: {_stderr(proc)}")
    return tags.parse_for_each_ref(proc.stdout.decode("utf-8", "replace"))


def _resolve_commit(root: Path, commit: str) -> str:
    # A leading "-" would be read as an option; ^{commit} refuses trees, blobs and
    # missing objects alike, and peels an annotated tag to its commit.
    if not commit or commit.startswith("-"):
        raise RegistryError(f"not a commit: {commit!r}")
    proc = _git(root, "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")
    sha = proc.stdout.decode("ascii", "replace").strip()
    if proc.returncode != 0 or not sha:
        raise RegistryError(f"commit {commit!r} does not exist in {root}")
    return sha


def _tag_exists(root: Path, tag: str) -> bool:
    return _git(root, "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}").returncode == 0


def _create_tag(root: Path, tag: str, commit: str, message: str) -> bool:
    """Create an annotated tag; False when the name was taken meanwhile (caller retries)."""
    # --cleanup=verbatim: keep the message byte for byte; git tag's default is "strip"
    # even with -F, which drops lines starting with "#" and trailing whitespace.
    args = ("tag", "-a", "--cleanup=verbatim", "-F", "-", tag, commit)
    proc = gitcmd.run(
        root, *args, stdin=message.encode("utf-8"), identity=True, missing=RegistryError
    )
    if proc.returncode == 0:
        return True
    if _tag_exists(root, tag):
        return False
    detail = _stderr(proc)
    lock = _git(root, "rev-parse", "--git-path", f"refs/tags/{tag}.lock")
    lock_path = root / lock.stdout.decode("utf-8", "replace").strip()
    if lock.returncode == 0 and lock_path.exists():
        detail += (
            f" (if no Git process is running, e.g. a previous run was killed, remove {lock_path})"
        )
    raise RegistryError(f"cannot create tag {tag}: {detail}")


# ----------------------------------------------------------------------- snapshot


@dataclass
class _Artifact:
    """What the tags say about one lifecycle (GTO artifact)."""

    name: str
    version_names: set[str] = field(default_factory=set)  # every name ever used: never reuse
    registrations: list[Registration] = field(default_factory=list)  # annotated only
    deregistrations: dict[str, list[str]] = field(default_factory=dict)  # version -> dates
    stage_tags: list[tuple[TagName, TagRecord]] = field(default_factory=list)
    max_counter: int = 0

    def deregistered(self, reg: Registration) -> bool:
        # GTO: a version is active when its newest direct event is a registration
        # (gto/base.py Version.is_active); a tie goes to the deregistration, the safe side.
        reg_at = _when(reg.created)
        return any(_when(d) >= reg_at for d in self.deregistrations.get(reg.version, []))

    def active(self) -> list[Registration]:
        """Registrations written by mllc (with a valid model hash), not deregistered."""
        by_version: dict[str, Registration] = {}
        for reg in self.registrations:
            if reg.model_md5 is None or not reg.commit or self.deregistered(reg):
                continue
            # One version, two tags (`iris@v1.0.0` and GTO's `iris@v1.0.0#3`): keep the first.
            by_version.setdefault(reg.version, reg)
        return sorted(by_version.values(), key=lambda r: semver.sort_key(r.version))

    def versions_at(self, commit: str) -> list[str]:
        return sorted({r.version for r in self.registrations if r.commit == commit})


def _when(created: str) -> datetime:
    # for-each-ref's iso-strict dates carry an offset; anything else sorts first, and a
    # naive date is taken as UTC so aware and naive values never meet in a comparison.
    try:
        when = datetime.fromisoformat(created)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _snapshot(root: Path, name: str | None = None) -> dict[str, _Artifact]:
    """Group the repository's tags by lifecycle; tags GTO would not read are skipped."""
    return _group(_read_tags(root), name)


def _group(records: list[TagRecord], name: str | None = None) -> dict[str, _Artifact]:
    artifacts: dict[str, _Artifact] = {}
    for record in records:
        parsed = tags.parse_tag_name(record.tag)
        # Not a GTO tag, or an artifact that is not an mllc lifecycle name: not ours.
        if parsed is None or not is_dns_label(parsed.artifact):
            continue
        if name is not None and parsed.artifact != name:
            continue
        art = artifacts.setdefault(parsed.artifact, _Artifact(parsed.artifact))
        # GTO numbers stage tags after the greatest counter on ANY of the artifact's
        # tags, lightweight ones included (gto/tag.py name_tag); so do we.
        if parsed.counter is not None:
            art.max_counter = max(art.max_counter, parsed.counter)
        if parsed.version is not None:
            # A lightweight or foreign-message tag still occupies its version name.
            art.version_names.add(parsed.version)
        if not record.annotated or not record.commit:
            continue  # GTO ignores lightweight tags (gto/tag.py find)
        if parsed.action == "register" and parsed.version is not None:
            parsed_msg = tags.parse_message(record.message)
            art.registrations.append(
                Registration(
                    name=parsed.artifact,
                    version=parsed.version,
                    tag=record.tag,
                    commit=record.commit,
                    created=record.created,
                    payload=parsed_msg[1] if parsed_msg else None,
                )
            )
        elif parsed.action == "deregister" and parsed.version is not None:
            art.deregistrations.setdefault(parsed.version, []).append(record.created)
        elif parsed.action in ("assign", "unassign"):
            art.stage_tags.append((parsed, record))
    return artifacts


def _check_name(value: str, what: str = "name") -> None:
    if not is_dns_label(value):
        raise RegistryError(
            f"invalid {what} {value!r}: expected a lowercase DNS label "
            "(letters, digits and '-', starting with a letter, at most 63 characters)"
        )


def in_cache(root: Path, md5: str) -> bool:
    """Whether the DVC 3 cache of ``root`` (``cache.dir`` honoured) holds this file hash."""
    if not tags.is_md5(md5):  # never build a path from an unchecked string
        return False
    return cache_object(root, md5).is_file()


def _to_version(root: Path, reg: Registration) -> RegisteredVersion:
    md5 = reg.model_md5 or ""
    return RegisteredVersion(
        name=reg.name,
        version=reg.version,
        commit=reg.commit,
        model_md5=md5,
        created=reg.created,
        metrics=reg.metrics,
        in_cache=in_cache(root, md5),
        trained_on=_trained_on(reg.lineage),
    )


def _trained_on(lineage: Mapping[str, Any]) -> str | None:
    compute = lineage.get("compute")
    where = compute.get("where") if isinstance(compute, Mapping) else None
    return where if isinstance(where, str) else None


# --------------------------------------------------------------------------- read


def list_versions(root: Path, name: str | None = None) -> list[RegisteredVersion]:
    """Registered versions (of one lifecycle, or all), by name then semantic version.

    Only mllc's registrations count (annotated ``<name>@vX.Y.Z`` tags whose message
    carries a model hash); foreign tags, lightweight tags, malformed messages and
    versions deregistered (``gto deprecate NAME VERSION``) are skipped.
    """
    if name is not None:
        _check_name(name)
    return _versions(root, _snapshot(root, name))


def versions_and_tags(root: Path) -> tuple[list[RegisteredVersion], dict[str, str]]:
    """:func:`list_versions` of every lifecycle, and every tag -> the object it names
    (a tag made by GTO or by hand moves a saved plan too), from one read of the tags."""
    records = _read_tags(root)
    return _versions(root, _group(records)), dict(sorted((r.tag, r.oid) for r in records))


def _versions(root: Path, artifacts: dict[str, _Artifact]) -> list[RegisteredVersion]:
    return [_to_version(root, reg) for _, art in sorted(artifacts.items()) for reg in art.active()]


def find_by_md5(root: Path, name: str, md5: str) -> RegisteredVersion | None:
    """The version of ``name`` registered for this model hash (the lowest if several)."""
    _check_name(name)
    art = _snapshot(root, name).get(name)
    if art is None:
        return None
    for reg in art.active():
        if reg.model_md5 == md5:
            return _to_version(root, reg)
    return None


def registration(root: Path, name: str, version: str) -> Registration | None:
    """The active registration tag of ``name`` ``version`` (its commit, its message's
    payload), or None when that version is not registered (or was deregistered)."""
    _check_name(name)
    art = _snapshot(root, name).get(name)
    return next((r for r in art.active() if r.version == version), None) if art else None


def assignments_elsewhere(
    root: Path, name: str, version: str, commit: str
) -> list[tuple[str, str]]:
    """(tag, commit) of each assignment whose message names ``version`` of ``name`` but
    which points at another commit than ``commit`` (the version's): every assignment is
    made on its version's commit, so one of the two tags was moved since."""
    _check_name(name)
    art = _snapshot(root, name).get(name)
    found = []
    for _parsed, record in art.stage_tags if art else []:
        parsed_msg = tags.parse_message(record.message)
        claimed = parsed_msg[1].get("version") if parsed_msg else None
        if claimed == version and record.commit != commit:
            found.append((record.tag, record.commit))
    return found


def _assignment_history(art: _Artifact) -> dict[str, list[Assignment]]:
    history: dict[str, list[Assignment]] = {}
    for parsed, record in art.stage_tags:
        if parsed.stage is None:  # cannot happen for assign/unassign; keeps mypy honest
            continue
        parsed_msg = tags.parse_message(record.message)
        payload = parsed_msg[1] if parsed_msg else {}
        # GTO resolves the version from the tag's commit (gto/tag.py index_tag), not
        # from the message; the message's "version" only breaks a (broken) tie.
        candidates = art.versions_at(record.commit)
        claimed = payload.get("version")
        version = (
            candidates[0]
            if len(candidates) == 1
            else claimed
            if isinstance(claimed, str) and claimed in candidates
            else None
        )
        history.setdefault(parsed.stage, []).append(
            Assignment(
                name=art.name,
                env=parsed.stage,
                version=version,
                commit=record.commit,
                tag=record.tag,
                counter=parsed.counter,
                created=record.created,
                unassign=parsed.action == "unassign",
                extra={k: v for k, v in payload.items() if k not in _ASSIGN_RESERVED},
            )
        )
    for events in history.values():
        # The counter is a per-artifact sequence number, a total order that does not
        # depend on clocks or on second-resolution tag dates (which GTO sorts by).
        events.sort(key=lambda a: (a.counter or 0, _when(a.created), a.tag))
    return history


def assignments(root: Path, name: str, rollouts: bool = False) -> dict[str, list[Assignment]]:
    """Every assignment of ``name`` to an environment, per environment, oldest first.

    A rollout's own stages (``<env>_canary``, ``<env>_shadow``: :mod:`mllc.registry.rollouts`)
    are not environments: left out unless ``rollouts``."""
    _check_name(name)
    art = _snapshot(root, name).get(name)
    history = _assignment_history(art) if art else {}
    if rollouts:
        return history
    return {stage: events for stage, events in history.items() if split_stage(stage) is None}


# -------------------------------------------------------------------------- write


def _next_second_after(created: str) -> None:
    """Wait until the clock is past the second of ``created`` (at most one second).

    GTO orders an environment's assignments by tag date, which has one-second
    resolution, and breaks ties by semver (gto/base.py Artifact.get_vstages): two
    assignments of one environment within a second could make `gto show` report the
    older one. mllc orders by the counter, so only GTO needs this; a date more than a
    second ahead (clock skew) is not waited for. The 50 ms margin is because Git dates
    with time(2), which Linux serves from a coarse clock that lags the precise
    clock_gettime behind time.time() by up to a scheduler tick.
    """
    delay = _when(created).timestamp() + 1.05 - time.time()
    if 0 < delay <= 1.05:
        time.sleep(delay)


def _check_json(payload: Mapping[str, Any], what: str) -> None:
    try:
        tags.dump_payload(dict(payload))
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"{what} must be JSON data (no NaN, no objects): {exc}") from exc


def register(
    root: Path,
    name: str,
    commit: str,
    model_md5: str,
    metrics: Mapping[str, Any],
    lineage: Mapping[str, Any],
) -> RegisteredVersion:
    """Register the model ``model_md5`` of ``name`` at ``commit``; idempotent by hash.

    If the hash is already registered for ``name`` that version is returned and
    nothing is created. Otherwise the next version (:func:`next_version` over every
    version name any tag of ``name`` uses) is tagged at ``commit``, annotated with
    GTO's first line and the lineage JSON.
    """
    _check_name(name)
    if not tags.is_md5(model_md5):
        raise RegistryError(f"invalid model hash {model_md5!r}: expected 32 lowercase hex digits")
    sha = _resolve_commit(root, commit)
    payload: dict[str, Any] = {
        # The commit the tag is made on: a tag moved to another commit later (`git tag
        # -f`) no longer points where its own message says (`mllc verify` checks).
        "commit": sha,
        "lineage": dict(lineage),
        "metrics": dict(metrics),
        "mllc_version": __version__,
        "model_md5": model_md5,
    }
    _check_json(payload, "metrics and lineage")
    for _ in range(_ATTEMPTS):
        art = _snapshot(root, name).get(name) or _Artifact(name)
        for reg in art.active():
            if reg.model_md5 == model_md5:
                return _to_version(root, reg)
        for reg in art.registrations:
            if reg.model_md5 == model_md5:  # only deregistered ones are left
                raise RegistryError(
                    f"model {model_md5} of {name} was registered as {reg.version} and "
                    "deregistered; refusing to register it again"
                )
        taken = art.versions_at(sha)
        if taken:
            # GTO allows one version per commit (gto/registry.py VersionExistsForCommit)
            # and maps a stage tag to a version through its commit.
            raise RegistryError(
                f"commit {sha[:12]} already carries {name} {', '.join(taken)} with another "
                "model; a commit's dvc.lock pins one model"
            )
        version = semver.next_version(art.version_names)
        tag = tags.version_tag(name, version)
        message = tags.format_message(tags.registration_first_line(name, version), payload)
        if _create_tag(root, tag, sha, message):
            created = find_by_md5(root, name, model_md5)
            if created is None:  # pragma: no cover - our own tag must read back
                raise RegistryError(f"created {tag} but cannot read it back")
            return created
        # Someone else took this version name meanwhile: look again (maybe same model).
    raise RegistryError(f"the registry of {name} keeps changing; try again")


def assign(
    root: Path,
    name: str,
    version: str,
    env: str,
    message_extra: Mapping[str, Any] | None = None,
) -> Assignment:
    """Record that environment ``env`` runs ``version`` of ``name``: tag ``<name>#<env>#<N>``.

    The tag points at the version's commit (how GTO links it to the version), ``N``
    follows GTO's per-artifact counter. Idempotent: when ``env``'s latest assignment
    already is ``version`` it is returned and nothing is created. ``message_extra``
    is stored in the message's JSON (e.g. who promoted, the gate results).
    """
    _check_name(name)
    _check_name(env, "environment")
    if not semver.is_valid(version):
        raise RegistryError(f"invalid version {version!r}: expected vX.Y.Z")
    extra = dict(message_extra or {})
    clash = sorted(_ASSIGN_RESERVED & extra.keys())
    if clash:
        raise RegistryError(f"message_extra may not set {', '.join(clash)}")
    payload = {**extra, "mllc_version": __version__, "version": version}
    _check_json(payload, "message_extra")
    return write_stage_tag(root, name, version, env, payload, again=False)


def write_stage_tag(
    root: Path,
    name: str,
    version: str,
    stage: str,
    payload: Mapping[str, Any],
    *,
    unassign: bool = False,
    again: bool = True,
) -> Assignment:
    """Tag ``<name>#<stage>#<N>`` (``unassign``: ``<name>#<stage>!#<N>``) on ``version``'s
    commit with ``payload`` as the message's JSON, GTO's counter and date order kept,
    retried while other writers race; the event read back. Without ``again``, an
    assignment ``stage`` already has last is returned instead (:func:`assign`)."""
    for _ in range(_ATTEMPTS):
        art = _snapshot(root, name).get(name) or _Artifact(name)
        target = next((r for r in art.active() if r.version == version), None)
        if target is None:
            raise RegistryError(f"{name} {version} is not registered")
        current = _assignment_history(art).get(stage, [])
        if not again and current and current[-1].version == version and not current[-1].unassign:
            return current[-1]
        if current:
            _next_second_after(current[-1].created)  # GTO orders a stage's events by date
        tag = tags.stage_tag(name, stage, art.max_counter + 1, unassign)
        first = tags.unassignment_first_line if unassign else tags.assignment_first_line
        message = tags.format_message(first(name, stage, version), dict(payload))
        if _create_tag(root, tag, target.commit, message):
            for event in assignments(root, name, rollouts=True).get(stage, []):
                if event.tag == tag:
                    return event
            raise RegistryError(f"created {tag} but cannot read it back")  # pragma: no cover
    raise RegistryError(f"the registry of {name} keeps changing; try again")
