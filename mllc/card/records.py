"""What the registry and the repository record about a version besides its commit:
when environments ran it (assignment tags), its monitoring reports (the checkout's and
those Git history keeps), what ``mllc verify`` recorded, its registry payload, and what
its test-split plots say (a confusion matrix, a residual summary). Read-only, bounded.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mllc import gitcmd, saferead
from mllc.card.files import AtCommit, text_of
from mllc.card.model import Confusion, MonitorEvidence, Period, Residuals, Verification
from mllc.layout import STATE
from mllc.observe.monitoring import REPORT, REPORT_MAX_BYTES, MonitorReport, monitoring_dir
from mllc.registry.tags import parse_message, parse_tag_name
from mllc.saferead import RefusedRead, json_object
from mllc.types import Assignment, RegisteredVersion

VERIFY_MAX_BYTES = 64 * 1024
MONITOR_HISTORY = 50  # reports read back through Git history, per environment
MAX_LABELS = 30  # confusion matrix labels shown


def verify_record(name: str, version: str) -> Path:
    """Where ``mllc verify`` records its verdict, relative to the repository root."""
    return STATE / "verify" / name / f"{version}.json"


def _label_key(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def confusion(raw: bytes) -> Confusion | None:
    reader = csv.reader(io.StringIO(raw.decode("utf-8", "replace")))
    header = next(reader, None)
    if header != ["actual", "predicted"]:
        return None
    pairs = [(row[0], row[1]) for row in reader if len(row) == 2]
    counts: dict[str, int] = {}
    for actual, _ in pairs:
        counts[actual] = counts.get(actual, 0) + 1
    labels = sorted({x for pair in pairs for x in pair}, key=_label_key)
    shown = labels[:MAX_LABELS]
    index = {label: i for i, label in enumerate(shown)}
    matrix = [[0] * len(shown) for _ in shown]
    for actual, predicted in pairs:
        if actual in index and predicted in index:
            matrix[index[actual]][index[predicted]] += 1
    return Confusion(
        labels=tuple(shown),
        counts=tuple(tuple(row) for row in matrix),
        rows=len(pairs),
        shown_labels_cut=len(labels) - len(shown),
    )


def residuals(raw: bytes) -> Residuals | None:
    reader = csv.reader(io.StringIO(raw.decode("utf-8", "replace")))
    if next(reader, None) != ["actual", "predicted", "residual"]:
        return None
    values: list[float] = []
    for row in reader:
        try:
            value = float(row[2]) if len(row) == 3 and row[2] else math.nan
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            values.append(value)
    if not values:
        return None
    n = len(values)
    return Residuals(
        rows=n,
        mean=sum(values) / n,
        mean_abs=sum(abs(v) for v in values) / n,
        rmse=math.sqrt(sum(v * v for v in values) / n),
        min=min(values),
        max=max(values),
    )


def periods(history: Mapping[str, Sequence[Assignment]], version: str) -> tuple[Period, ...]:
    """When each environment started and stopped running ``version`` (registry order)."""
    found: list[Period] = []
    for env, events in sorted(history.items()):
        current: Assignment | None = None
        for event in events:
            runs = not event.unassign and event.version == version
            if current is None and runs:
                current = event
            elif current is not None and not runs:
                if event.unassign and event.version not in (None, version):
                    continue  # an unassignment of another version changes nothing here
                why = (
                    "unassigned"
                    if event.unassign
                    else f"replaced by {event.version}"
                    if event.version
                    else "replaced by an unregistered commit"
                )
                found.append(
                    Period(env, current.created, current.tag, event.created, event.tag, why)
                )
                current = None
        if current is not None:
            found.append(Period(env, current.created, current.tag))
    return tuple(sorted(found, key=lambda p: (p.started, p.environment)))


def _report_summary(report: MonitorReport, where: str) -> MonitorEvidence:
    drift = "not checked"
    if report.drift is not None:
        n = len(report.drift.features)
        drift = (
            f"{len(report.drift.drifted)} of {n} feature{'' if n == 1 else 's'} drifted "
            f"({report.drift.method}, threshold {report.drift.threshold:g})"
        )
    perf = "no labels" if not report.batch.labelled else "not computed"
    if report.performance is not None and report.performance.value is not None:
        p = report.performance
        bounds = ", ".join(
            f"{k} {v:g}" for k, v in (("min", p.min), ("max", p.max)) if v is not None
        )
        perf = f"{p.metric} {p.value!r}" + (f" ({bounds})" if bounds else "")
    return MonitorEvidence(
        environment=report.environment,
        report=report.id,
        time=report.time,
        breach=report.breach,
        reasons=report.reasons,
        drift=drift,
        performance=perf,
        where=where,
    )


def monitoring(
    root: Path, name: str, version: str, environments: Sequence[str]
) -> tuple[MonitorEvidence, ...]:
    """Every recorded monitoring report of ``version``: the checkout's latest of each
    environment and the earlier ones Git history keeps (the last few dozen each)."""
    found: dict[str, MonitorEvidence] = {}
    for env in environments:
        path = f"{monitoring_dir(name, env)}/{REPORT}"
        reports: list[tuple[bytes, str]] = []
        try:
            raw = saferead.read_bytes(root / path, root, max_bytes=REPORT_MAX_BYTES)
        except (OSError, RefusedRead):
            raw = None
        if raw is not None:
            reports.append((raw, path))
        log = gitcmd.run(root, "log", f"-n{MONITOR_HISTORY}", "--format=%H", "--", path)
        commits = log.stdout.decode("ascii", "replace").split() if log.returncode == 0 else []
        for commit in commits:
            blob = AtCommit(root, commit).read(path, REPORT_MAX_BYTES)
            if blob is not None:
                reports.append((blob, f"{path} at commit {commit[:10]}"))
        for blob, where in reports:
            try:
                report = MonitorReport.model_validate_json(blob)
            except ValueError:
                continue
            if report.lifecycle == name and report.environment == env and report.version == version:
                found.setdefault(report.id, _report_summary(report, where))
    return tuple(sorted(found.values(), key=lambda m: (m.time, m.environment)))


def verification(root: Path, name: str, version: RegisteredVersion) -> Verification:
    """What ``mllc verify`` recorded for this exact version (commit and model hash)."""
    unverified = Verification(
        "unverified",
        f"not verified on this machine (run `mllc verify {name}@{version.version}`)",
    )
    path = root / verify_record(name, version.version)
    try:
        record = json_object(saferead.read_bytes(path, root, max_bytes=VERIFY_MAX_BYTES))
    except (OSError, RefusedRead):
        record = None
    if record is None:
        return unverified
    verified = record.get("verified")
    matches = (
        record.get("name") == name
        and record.get("version") == version.version
        and record.get("commit") == version.commit
        and record.get("model_md5") == version.model_md5
        and isinstance(verified, bool)
        and isinstance(record.get("checked_at"), str)
        and isinstance(record.get("summary"), str)
    )
    if not matches:
        return unverified
    checked, summary = str(record["checked_at"]), str(record["summary"])
    tool = text_of(record.get("mllc_version"))
    if verified:
        return Verification("verified", f"verified at {checked}", checked, summary, tool)
    return Verification("failed", f"verification FAILED at {checked}", checked, summary, tool)


def tag_payload(root: Path, name: str, version: str) -> dict[str, Any]:
    """The JSON document of the version's registry tag (model_md5, metrics, lineage)."""
    proc = gitcmd.run(root, "for-each-ref", "--format=%(contents)", f"refs/tags/{name}@{version}")
    parsed = parse_message(proc.stdout.decode("utf-8", "replace")) if proc.returncode == 0 else None
    return parsed[1] if parsed else {}


def version_names(root: Path, name: str) -> list[str]:
    """Every version name any tag of ``name`` uses (lightweight and deregistered ones too:
    a name is never reused), as the registry counts them when it registers."""
    proc = gitcmd.run(root, "for-each-ref", "--format=%(refname:strip=2)", "refs/tags/")
    found = []
    for tag in proc.stdout.decode("utf-8", "replace").splitlines() if proc.returncode == 0 else []:
        parsed = parse_tag_name(tag)
        if parsed is not None and parsed.artifact == name and parsed.version is not None:
            found.append(parsed.version)
    return found
