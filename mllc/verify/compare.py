"""The comparisons behind ``mllc verify``: a rebuild against what was recorded. Pure.

Inputs are parsed, checked ``dvc.lock`` documents (:func:`mllc.observe.dvclock.check`),
the bytes of the outputs Git keeps (metrics and plots, read at the version's commit and
in the rebuild), and the registration tag's payload. Outputs are findings: what differs,
named by stage and file, with the recorded and the rebuilt value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mllc.verify.model import Finding, StageCheck

# Top-level keys of lineage.json that describe the machine that built the model, not the
# model: a difference there is a note, not a failure (the model's bytes decide).
ENVIRONMENT_KEYS = frozenset({"versions"})
# Lineage keys the registration adds and no rebuild writes: where training ran (the spec's
# compute section). Either backend builds the same bytes, so it is never compared.
REGISTRATION_KEYS = frozenset({"compute"})
# How many differing values one file's finding lists before it says "and N more".
_SHOWN = 6


@dataclass(frozen=True)
class Entry:
    """One ``deps``/``outs`` record of a lock."""

    md5: str | None
    size: int | None
    nfiles: int | None

    def describe(self) -> str:
        if self.md5 is None:
            return "no hash"
        size = "" if self.size is None else f", {self.size:,} bytes"
        files = "" if self.nfiles is None else f", {self.nfiles} files"
        return f"md5 {self.md5}{size}{files}"


def _entries(stage: Mapping[str, Any], section: str) -> dict[str, Entry]:
    found: dict[str, Entry] = {}
    for item in stage.get(section) or []:
        md5 = item.get("md5")  # DVC 3 records every local file and folder by md5
        found[item["path"]] = Entry(
            md5=str(md5) if md5 else None,
            size=item.get("size"),
            nfiles=item.get("nfiles"),
        )
    return found


def stages_of(lock: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    stages = (lock or {}).get("stages") or {}
    return {str(k): v for k, v in stages.items()}


def outputs(lock: Mapping[str, Any] | None) -> dict[str, tuple[str, Entry]]:
    """Every output the lock records: path -> (stage, entry)."""
    return {
        path: (name, entry)
        for name, stage in stages_of(lock).items()
        for path, entry in _entries(stage, "outs").items()
    }


def flat(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted.key, leaf)`` pairs of a JSON value; lists and nested empty mappings are
    leaves, a top-level empty mapping has none."""
    if isinstance(value, Mapping) and (value or not prefix):
        for key in sorted(value, key=str):
            yield from flat(value[key], f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


def value_changes(recorded: Any, rebuilt: Any) -> list[str]:
    """``key: recorded → rebuilt`` for every leaf that differs (``absent`` when missing)."""
    old, new = dict(flat(recorded)), dict(flat(rebuilt))
    changes = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if a != b:
            changes.append(f"{key or '(whole value)'}: {_show(a)} → {_show(b)}")
    return changes


class _Absent:
    """A key one side does not have (JSON's null is a value)."""


_ABSENT = _Absent()


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "absent"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)[:80]


def _listed(changes: list[str]) -> str:
    shown = "; ".join(changes[:_SHOWN])
    more = len(changes) - _SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")


def _json(raw: bytes | None) -> Any:
    if raw is None:
        return _ABSENT
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return _ABSENT


def _output_finding(
    stage: str, path: str, recorded: Entry, rebuilt: Entry, texts: Mapping[str, Any]
) -> Finding:
    detail = f"dvc.lock records {recorded.describe()}; the rebuild gives {rebuilt.describe()}"
    before, after = texts.get(path, (None, None))
    if path.endswith(".json") and before is not None and after is not None:
        old, new = _json(before), _json(after)
        if old is not _ABSENT and new is not _ABSENT:
            changes = value_changes(old, new)
            if changes:
                detail += f" (committed file → rebuilt: {_listed(changes)})"
    elif before is not None and after is not None and before != after:
        old_lines, new_lines = before.splitlines(), after.splitlines()
        differing = sum(a != b for a, b in zip(old_lines, new_lines, strict=False))
        differing += abs(len(old_lines) - len(new_lines))
        detail += f" ({differing} of {max(len(old_lines), len(new_lines))} lines differ)"
    return Finding(check="stage", subject=f"{stage}: {path}", detail=detail)


def compare_stages(
    recorded: Mapping[str, Any] | None,
    rebuilt: Mapping[str, Any] | None,
    texts: Mapping[str, tuple[bytes | None, bytes | None]],
    tolerated: frozenset[str] = frozenset(),
) -> tuple[StageCheck, ...]:
    """Each stage of the rebuilt lock against the committed one: its command, params,
    dependencies and outputs. ``texts`` holds (committed, rebuilt) bytes of the outputs
    Git keeps, for value-level detail; ``tolerated`` outputs differ for a reason already
    reported elsewhere (lineage.json's library versions) and are not findings here."""
    old, new = stages_of(recorded), stages_of(rebuilt)
    checks = []
    # In the pipeline's order, as DVC wrote the locks.
    for name in [*old, *(n for n in new if n not in old)]:
        if name not in new:
            checks.append(
                StageCheck(
                    stage=name,
                    status="not rebuilt",
                    outputs=0,
                    findings=(
                        Finding(
                            check="stage",
                            subject=name,
                            detail="dvc.lock records this stage; the pipeline at the commit "
                            "has no such stage",
                        ),
                    ),
                )
            )
            continue
        if name not in old:
            checks.append(
                StageCheck(
                    stage=name,
                    status="not recorded",
                    outputs=0,
                    findings=(
                        Finding(
                            check="lock",
                            subject=name,
                            detail="the pipeline at the commit has this stage; its dvc.lock "
                            "does not record it",
                        ),
                    ),
                )
            )
            continue
        checks.append(_compare_stage(name, old[name], new[name], texts, tolerated))
    return tuple(checks)


def _compare_stage(
    name: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    texts: Mapping[str, tuple[bytes | None, bytes | None]],
    tolerated: frozenset[str],
) -> StageCheck:
    findings: list[Finding] = []
    if old.get("cmd") != new.get("cmd"):
        findings.append(
            Finding(
                check="lock",
                subject=f"{name}: cmd",
                detail=f"dvc.lock records {old.get('cmd')!r}; dvc.yaml runs {new.get('cmd')!r}",
            )
        )
    changes = value_changes(old.get("params") or {}, new.get("params") or {})
    if changes:
        findings.append(
            Finding(
                check="lock",
                subject=f"{name}: params",
                detail=f"dvc.lock records other values than params.yaml holds: {_listed(changes)}",
            )
        )
    old_deps, new_deps = _entries(old, "deps"), _entries(new, "deps")
    for path in sorted(old_deps.keys() | new_deps.keys()):
        a, b = old_deps.get(path), new_deps.get(path)
        if a != b:
            findings.append(
                Finding(
                    check="lock",
                    subject=f"{name}: {path}",
                    detail=f"dvc.lock records the input as {a.describe() if a else 'absent'}; "
                    f"at the commit it is {b.describe() if b else 'not an input'}",
                )
            )
    old_outs, new_outs = _entries(old, "outs"), _entries(new, "outs")
    for path in sorted(old_outs.keys() | new_outs.keys()):
        a, b = old_outs.get(path), new_outs.get(path)
        if a == b or path in tolerated:
            continue
        if a is None or b is None:
            where = "dvc.lock" if a is None else "the rebuild"
            findings.append(
                Finding(
                    check="stage", subject=f"{name}: {path}", detail=f"not an output in {where}"
                )
            )
        else:
            findings.append(_output_finding(name, path, a, b, texts))
    return StageCheck(
        stage=name,
        status="differs" if findings else "identical",
        outputs=len(new_outs),
        findings=tuple(findings),
    )


def check_payload(
    payload: Mapping[str, Any], metrics: Any, lineage: Any
) -> tuple[list[Finding], list[str]]:
    """The registration's recorded metrics and lineage against the rebuild's
    ``metrics.json`` and ``lineage.json``: (findings, notes on the environment)."""
    findings: list[Finding] = []
    notes: list[str] = []
    recorded_metrics = payload.get("metrics")
    if recorded_metrics is not None and metrics is not None:
        changes = value_changes(recorded_metrics, metrics)
        if changes:
            findings.append(
                Finding(
                    check="registry",
                    subject="metrics",
                    detail=f"the tag records other metrics than the rebuild: {_listed(changes)}",
                )
            )
    recorded_lineage = payload.get("lineage")
    if isinstance(recorded_lineage, Mapping) and isinstance(lineage, Mapping):
        skipped = ENVIRONMENT_KEYS | REGISTRATION_KEYS
        changes = value_changes(
            {k: v for k, v in recorded_lineage.items() if k not in skipped},
            {k: v for k, v in lineage.items() if k not in skipped},
        )
        if changes:
            findings.append(
                Finding(
                    check="registry",
                    subject="lineage",
                    detail=f"the tag's lineage no longer matches the rebuild: {_listed(changes)}",
                )
            )
        compute = recorded_lineage.get("compute")
        if isinstance(compute, Mapping) and isinstance(compute.get("where"), str):
            notes.append(
                f"trained on {compute['where']} when registered (not compared: every backend "
                "builds the same bytes)"
            )
        versions = value_changes(
            {k: v for k, v in recorded_lineage.items() if k in ENVIRONMENT_KEYS},
            {k: v for k, v in lineage.items() if k in ENVIRONMENT_KEYS},
        )
        if versions:
            notes.append(
                f"built with other library versions than this machine's: {'; '.join(versions)}"
            )
    return findings, notes


def check_model(registry_md5: str, lock_md5: str | None, rebuilt_md5: str | None) -> list[Finding]:
    """The model's three hashes: the registration's, the committed lock's, the rebuild's."""
    findings = []
    if lock_md5 != registry_md5:
        findings.append(
            Finding(
                check="lock",
                subject="model",
                detail=f"the registry records model md5 {registry_md5}; the commit's dvc.lock "
                f"records {lock_md5 or 'no model'}",
            )
        )
    if rebuilt_md5 is not None and rebuilt_md5 != registry_md5:
        findings.append(
            Finding(
                check="model",
                subject="model",
                detail=f"the rebuild gives model md5 {rebuilt_md5}; the registry records "
                f"{registry_md5}",
            )
        )
    return findings


def check_tag(
    tag: str, commit: str, payload: Mapping[str, Any], stray_assignments: list[tuple[str, str]]
) -> list[Finding]:
    """Whether the version's tag still points where it was made: the commit its own
    message records (mllc ≥ this release writes it), and the commit its environment
    assignments point at (each ``NAME#ENV#N`` tag is made on the version's commit).
    ``stray_assignments``: (assignment tag, its commit) naming this version elsewhere."""
    findings = []
    recorded = payload.get("commit")
    if isinstance(recorded, str) and recorded != commit:
        findings.append(
            Finding(
                check="tag",
                subject=tag,
                detail=f"the tag was moved: its message records commit {recorded[:12]}, it "
                f"points at {commit[:12]}",
            )
        )
    for other, at in stray_assignments:
        findings.append(
            Finding(
                check="tag",
                subject=tag,
                detail=f"{other} assigns this version at commit {at[:12]}, but the version's "
                f"tag points at {commit[:12]}: one of the tags was moved",
            )
        )
    return findings
