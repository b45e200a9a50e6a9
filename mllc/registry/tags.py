"""The registry's tag grammar and tag messages, in GTO's format; pure functions, no Git.

Tag names (GTO 1.x, ``gto/tag.py`` ``TagTemplates`` and ``gto/constants.py`` ``tag_re``):

- ``<name>@vX.Y.Z``       registers version vX.Y.Z at the tag's commit
- ``<name>@vX.Y.Z!``      deregisters it (``gto deprecate NAME VERSION``; never written by mllc)
- ``<name>#<stage>#<N>``  assigns the version at the tag's commit to a stage (environment)
- ``<name>#<stage>!#<N>`` unassigns it (``gto deprecate NAME VERSION STAGE``; idem)

``N`` is one counter per artifact, shared by every stage: GTO takes the greatest
counter among all of the artifact's tags plus one. Only annotated tags count for GTO.

Messages: GTO's own first line (so ``gto history`` and ``git tag -n`` read naturally),
a blank line, then one JSON object with sorted keys that carries the lineage.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from mllc.semver import SEMVER

_MD5 = re.compile(r"[0-9a-f]{32}")

# GTO's tag grammar, ported verbatim from gto/constants.py (`name`, `dirname`, `semver`
# from mllc.semver, `tag_re`, with ":" spelled "=" in tags) so that mllc
# classifies a tag exactly as `gto show` does, including GTO-only forms (deprecation,
# counters on versions).
_GTO_NAME = r"[a-zA-Z0-9]([a-zA-Z0-9-/_]*[a-zA-Z0-9])?"
_GTO_DIRNAME = r"[a-zA-Z0-9-_./]+"
_GTO_TAG = re.compile(
    rf"(?P<artifact>(?:{_GTO_DIRNAME}=)?{_GTO_NAME})"
    rf"(((#(?P<stage>{_GTO_NAME})|@(?P<version>v{SEMVER}))(?P<cancel>!?))"
    r"|@((?P<deprecated>deprecated)|(?P<created>created)))"
    r"(#(?P<counter>[0-9]+))?"
)

Action = Literal["register", "deregister", "assign", "unassign", "deprecate", "create"]


def is_md5(value: str) -> bool:
    return _MD5.fullmatch(value) is not None


@dataclass(frozen=True)
class TagName:
    """A tag name parsed with GTO's grammar."""

    artifact: str  # as GTO names it: "=" in the tag is ":" in the name
    action: Action
    version: str | None = None
    stage: str | None = None
    counter: int | None = None


def parse_tag_name(tag: str) -> TagName | None:
    """Classify a tag as GTO does; None for a tag GTO ignores (``iris@something``)."""
    match = _GTO_TAG.fullmatch(tag)
    if match is None:
        return None
    cancel = match["cancel"] == "!"
    action: Action
    if match["version"]:
        action = "deregister" if cancel else "register"
    elif match["stage"]:
        action = "unassign" if cancel else "assign"
    elif match["deprecated"]:
        action = "deprecate"
    else:
        action = "create"
    counter = match["counter"]
    return TagName(
        artifact=match["artifact"].replace("=", ":"),
        action=action,
        version=match["version"],
        stage=match["stage"],
        counter=int(counter) if counter else None,
    )


def version_tag(name: str, version: str) -> str:
    return f"{name}@{version}"


def stage_tag(name: str, env: str, counter: int, unassign: bool = False) -> str:
    return f"{name}#{env}{'!' if unassign else ''}#{counter}"


def registration_first_line(name: str, version: str) -> str:
    # GTO's wording for a registration (gto/registry.py, GitRegistry.register).
    return f"Registering artifact {name} version {version}"


def assignment_first_line(name: str, env: str, version: str) -> str:
    # GTO's wording for an assignment (gto/registry.py, GitRegistry.assign).
    return f"Assigning stage {env} to artifact {name} version {version}"


def unassignment_first_line(name: str, env: str, version: str) -> str:
    # GTO's wording for an unassignment (gto/registry.py, GitRegistry.unassign).
    return f"Unassigning stage '{env}' to artifact '{name}' version '{version}'"


def dump_payload(payload: dict[str, Any]) -> str:
    """The JSON document of a message: sorted keys, indented for `git show`, strict JSON.

    ``allow_nan=False`` because NaN/Infinity are not JSON: other readers would reject
    the whole message. Raises ValueError (NaN) or TypeError (not serialisable).
    """
    return json.dumps(payload, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)


def format_message(first_line: str, payload: dict[str, Any]) -> str:
    return f"{first_line}\n\n{dump_payload(payload)}\n"


def parse_message(message: str) -> tuple[str, dict[str, Any]] | None:
    """Split a tag message into its first line and JSON object; None when it has none.

    Tolerant by design: anything after the JSON (a GPG signature of a signed tag) is
    ignored, and a message that is not ours (GTO's bare one-liner) yields None
    rather than an exception.
    """
    first, sep, rest = message.partition("\n")
    if not sep:
        return None
    rest = rest.lstrip()
    if not rest.startswith("{"):
        return None
    try:
        payload, _ = json.JSONDecoder().raw_decode(rest)
    except (ValueError, RecursionError):  # malformed, or absurdly nested ("[[[[..."): not ours
        return None
    if not isinstance(payload, dict):
        return None
    return first.strip(), payload


@dataclass(frozen=True)
class TagRecord:
    """One tag as ``git for-each-ref`` reports it."""

    tag: str  # short name, without refs/tags/
    annotated: bool
    commit: str  # the commit it resolves to; "" when it does not point at a commit
    created: str  # ISO 8601 (tagger date for annotated tags)
    message: str = field(default="", repr=False)
    oid: str = ""  # the object the ref names: the tag object of an annotated tag


# One `git for-each-ref` call reads every field of every tag: name, object type, the
# peeled target (`*` dereferences an annotated tag one level), date and message. Fields
# are NUL-separated (Git's tools cannot put a NUL in a message; one forged with plumbing
# stays inside the last field thanks to maxsplit) and a record ends with NUL SOH NUL,
# which for-each-ref follows with its own newline.
FOR_EACH_REF_FORMAT = (
    "%(refname)%00%(objecttype)%00%(objectname)%00%(*objecttype)%00%(*objectname)%00"
    "%(creatordate:iso-strict)%00%(contents)%00%01%00"
)
_RECORD_END = "\0\x01\0\n"
_FIELDS = 7


def parse_for_each_ref(output: str) -> list[TagRecord]:
    """Parse the output of ``git for-each-ref --format=FOR_EACH_REF_FORMAT refs/tags``."""
    records: list[TagRecord] = []
    for chunk in output.split(_RECORD_END):
        if not chunk:
            continue
        # maxsplit keeps any stray NUL inside the message instead of shifting fields.
        parts = chunk.split("\0", _FIELDS - 1)
        if len(parts) != _FIELDS:
            continue
        refname, otype, oname, peeled_type, peeled_name, created, message = parts
        if not refname.startswith("refs/tags/"):
            continue
        tag = refname.removeprefix("refs/tags/")
        if otype == "tag":
            commit = peeled_name if peeled_type == "commit" else ""
            records.append(TagRecord(tag, True, commit, created, message, oname))
        else:
            commit = oname if otype == "commit" else ""
            records.append(TagRecord(tag, False, commit, created, oid=oname))
    return records


@dataclass(frozen=True)
class Registration:
    """A registration tag of one lifecycle as mllc reads it."""

    name: str
    version: str
    tag: str
    commit: str
    created: str
    payload: dict[str, Any] | None  # None: not written by mllc (no lineage)

    @property
    def model_md5(self) -> str | None:
        if self.payload is None:
            return None
        md5 = self.payload.get("model_md5")
        return md5 if isinstance(md5, str) and is_md5(md5) else None

    @property
    def metrics(self) -> dict[str, Any]:
        metrics = (self.payload or {}).get("metrics")
        return metrics if isinstance(metrics, dict) else {}

    @property
    def lineage(self) -> dict[str, Any]:
        lineage = (self.payload or {}).get("lineage")
        return lineage if isinstance(lineage, dict) else {}
