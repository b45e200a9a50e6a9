"""``mllc monitor``: compare a batch with the training data and the deployed model's gates.

The reference is the training split the pipeline saved
(``pipelines/<name>/data/train.parquet``); the features compared are the ones the
model was trained on, with the same numeric/categorical split. With labels in the
batch, the version the environment runs (the registry's latest assignment) is
loaded from the DVC cache, checked against its registered hash, and scored.

The result is written to ``monitoring/<name>/<env>/``: ``report.json`` (the
versioned contract the reconciler reads), ``report.md`` and ``report.html``; after a
breach with ``on_breach: retrain`` and labels, the batch is kept there as
``batch.parquet`` for the next apply to add to the training data. Each file is
written to a temporary name and renamed; ``report.json`` goes last, so a report
never points at a batch that is not there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mllc import __version__
from mllc.dvcremote import restore
from mllc.errors import MllcError
from mllc.hashing import Hasher
from mllc.layout import Layout
from mllc.monitor import render
from mllc.monitor.batch import (
    Batch,
    BatchError,
    conform,
    is_url,
    read_captured,
    read_file,
)
from mllc.observe.monitoring import (
    BATCH,
    REPORT,
    BatchInfo,
    GateCheck,
    MonitorReport,
    PerformanceResult,
    ReferenceInfo,
    drift_reason,
    feedback_ids,
    monitoring_dir,
)
from mllc.observe.pipeline import read_lock
from mllc.observe.world import new_hasher, out_md5_from_lock
from mllc.policy.gates import evaluate
from mllc.registry import assignments, list_versions
from mllc.spec.models import Lifecycle
from mllc.spec.repository import find_lifecycle
from mllc.stages import metrics as scoring
from mllc.stages.features import feature_columns
from mllc.stages.io import Outputs, StageError
from mllc.targets.base import model_file
from mllc.targets.local import capture_dir

__all__ = ["BatchError", "Outcome", "monitor"]


@dataclass(frozen=True)
class Outcome:
    report: MonitorReport
    written: tuple[str, ...]  # repository-relative paths


def _environment(spec: Lifecycle, env: str | None) -> str:
    envs = list(spec.environments)
    if env is None:
        if len(envs) == 1:
            return envs[0]
        raise MllcError(
            f"{spec.metadata.name} has {len(envs)} environments: name one with --env "
            f"({', '.join(envs) or 'none'})"
        )
    if env not in envs:
        raise MllcError(
            f"{spec.metadata.name} has no environment {env!r} (environments: {', '.join(envs)})"
        )
    return env


def _deployed(root: Path, name: str, env: str) -> tuple[str | None, str | None]:
    """(version, model md5) the registry last assigned to ``env``."""
    history = [a for a in assignments(root, name).get(env, []) if not a.unassign]
    if not history or history[-1].version is None:
        return None, None
    version = history[-1].version
    md5 = next((v.model_md5 for v in list_versions(root, name) if v.version == version), None)
    return version, md5


def _load_batch(
    root: Path, name: str, env: str, target_kind: str, data: str | None, captured: bool
) -> tuple[Any, str, list[str]]:
    if data is not None and captured:
        raise MllcError("give --data FILE or --captured, not both")
    if data is None and not captured:
        if target_kind != "local":
            raise MllcError(
                f"{name}/{env} runs on {target_kind}: give the batch with --data FILE "
                "(--captured reads what a local server captured)"
            )
        captured = True
    if captured:
        frame, warnings = read_captured(capture_dir(root, name, env))
        return frame, "captured requests", warnings
    assert data is not None
    if is_url(data):
        return read_file(data), data, []
    path = Path(data)
    shown = os.path.relpath(path, root) if path.is_absolute() else path.as_posix()
    return read_file(data), Path(shown).as_posix(), []


def _fetch_reference(root: Path, layout: Layout) -> None:
    """Another clone has the training split's record in dvc.lock but not the file: it is
    restored from the DVC cache, fetched from the default remote when the cache lacks it,
    and checked against the md5 dvc.lock records (never the whole pipeline's outputs)."""
    reference_file = layout.split("train")
    if (root / reference_file).is_file():
        return
    md5 = out_md5_from_lock(read_lock(root / layout.dvc_lock), "split", reference_file.as_posix())
    if md5 is not None:
        restore(root, reference_file.as_posix(), md5, what="the training reference from")


def _performance(
    root: Path, spec: Lifecycle, batch: Batch, features: list[str], md5: str
) -> PerformanceResult:
    from mllc.serve.model import load  # noqa: PLC0415 (start-up: numpy, joblib)

    target = spec.problem.target
    rows = batch.frame[batch.frame[target].notna()]
    served = load(model_file(root, md5), md5)
    estimator = served.estimator
    y = rows[target]
    if spec.problem.task == "classification":
        classes = getattr(estimator, "classes_", None)
        if classes is not None and len(classes):
            kind = type(classes[0])
            with contextlib.suppress(TypeError, ValueError):
                y = y.map(lambda v: kind(v) if not isinstance(v, kind) else v)
    else:
        y = y.astype(float)
    predictions = scoring.predict(estimator, rows[features], spec.problem.task)
    values = scoring.score(spec.problem.task, y.to_numpy(), predictions)
    finite = {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}
    perf = spec.monitoring.performance if spec.monitoring else None
    metric = perf.metric if perf is not None else spec.problem.metric
    value = finite.get(metric)
    low = perf.min if perf is not None else None
    high = perf.max if perf is not None else None
    breach = perf is not None and (
        value is None or (low is not None and value < low) or (high is not None and value > high)
    )
    gates = tuple(
        GateCheck(gate=r.gate, text=r.text(), passed=r.passed)
        for r in evaluate(list(spec.gates), finite)
    )
    return PerformanceResult(
        metric=metric,
        value=value,
        min=low,
        max=high,
        breach=breach or not all(g.passed for g in gates),
        gates=gates,
        metrics=finite,
    )


def _performance_reasons(perf: PerformanceResult) -> list[str]:
    reasons = []
    if perf.value is None and (perf.min is not None or perf.max is not None):
        reasons.append(f"performance: {perf.metric} cannot be computed on the batch")
    elif perf.value is not None and perf.min is not None and perf.value < perf.min:
        reasons.append(f"performance: {perf.metric} {perf.value:.3f} < {perf.min:g}")
    elif perf.value is not None and perf.max is not None and perf.value > perf.max:
        reasons.append(f"performance: {perf.metric} {perf.value:.3f} > {perf.max:g}")
    reasons += [f"gate failed on the batch: {g.text}" for g in perf.gates if not g.passed]
    return reasons


def monitor(
    root: Path,
    paths: Sequence[str],
    name: str,
    env: str | None = None,
    data: str | None = None,
    captured: bool = False,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Outcome:
    """Run one check and write its report; never prints, never exits."""
    import pandas as pd

    from mllc.monitor.drift import dataset_drift  # noqa: PLC0415 (start-up: numpy)

    _, spec = find_lifecycle(paths, name, root)
    if spec.monitoring is None:
        raise MllcError(f"{name} has no monitoring section: nothing to check against")
    env = _environment(spec, env)
    layout = Layout(name)
    reference_file = layout.split("train")
    _fetch_reference(root, layout)
    try:
        reference = pd.read_parquet(root / reference_file, engine="pyarrow")
    except (OSError, ValueError):
        raise MllcError(
            f"the training reference {reference_file.as_posix()} is missing: "
            "run 'mllc apply' (or 'dvc pull') first, or configure the DVC remote it was "
            "pushed to (docs/remote.md)"
        ) from None
    target = spec.problem.target
    try:
        numeric, categorical = feature_columns(reference, target, spec.features)
    except StageError as exc:
        raise MllcError(f"the training reference does not fit the spec: {exc.detail}") from None
    frame, source, notes = _load_batch(
        root, name, env, spec.environments[env].target, data, captured
    )
    batch = conform(frame, source, numeric, categorical, target, notes)
    warnings = list(batch.warnings)

    version, md5 = _deployed(root, name, env)
    hashes = new_hasher(root)  # the md5s plan cached: an unchanged file is not read again
    trained = _md5(hashes, layout.model)
    if version is None:
        warnings.append(f"no version is recorded as deployed to {env}: run 'mllc apply'")
    elif md5 is not None and trained is not None and trained != md5:
        warnings.append(
            f"the reference is the training split of the current pipeline, not of {version} "
            f"(which {env} runs)"
        )

    monitoring = spec.monitoring
    drift = None
    if monitoring.drift is not None:
        kinds: dict[str, Any] = {c: "numeric" for c in numeric}
        kinds.update({c: "categorical" for c in categorical})
        drift = dataset_drift(
            reference,
            batch.frame,
            kinds,
            monitoring.drift.method,
            monitoring.drift.threshold,
        )
        warnings += _small_batch(drift, len(batch.frame), len(reference))
    performance = None
    if batch.labelled:
        if md5 is None:
            warnings.append("the batch has labels, but no deployed version to score")
        else:
            performance = _performance(root, spec, batch, [*numeric, *categorical], md5)
    elif monitoring.performance is not None:
        warnings.append(
            f"the batch has no {target!r} column: performance is not measured (labels needed)"
        )

    # worst first, as drift.drifted
    reasons = [drift_reason(f) for f in render.ordered_features(drift) if f.breach] if drift else []
    reasons += _performance_reasons(performance) if performance else []
    breach = bool(reasons)
    identity = json.dumps([name, env, version, md5, batch.sha256])
    report_id = hashlib.sha256(identity.encode()).hexdigest()[:16]
    folder = monitoring_dir(name, env)
    keep_batch = breach and monitoring.on_breach == "retrain" and batch.labelled
    if keep_batch and report_id in feedback_ids(root, name):
        keep_batch = False
        warnings.append(f"this batch is already in the training data (pipelines/{name}/feedback/)")
    report = MonitorReport(
        mllc_version=__version__,
        id=report_id,
        lifecycle=name,
        environment=env,
        version=version,
        time=now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        batch=BatchInfo(
            source=source, rows=len(batch.frame), labelled=batch.labelled, sha256=batch.sha256
        ),
        reference=ReferenceInfo(
            path=reference_file.as_posix(), rows=len(reference), md5=_md5(hashes, reference_file)
        ),
        drift=drift,
        performance=performance,
        breach=breach,
        reasons=tuple(reasons),
        on_breach=monitoring.on_breach,
        retrain_data=f"{folder}/{BATCH}" if keep_batch else None,
        warnings=tuple(warnings),
    )
    outputs = Outputs()  # each file to a temporary name, then all renamed in this order
    if keep_batch:
        columns = [c for c in reference.columns if c in batch.frame.columns]
        outputs.write_parquet(root / folder / BATCH, batch.frame[columns])
    else:
        outputs.remove(root / folder / BATCH)  # the newest report decides
    outputs.write_text(root / folder / "report.md", render.markdown(report))
    outputs.write_text(root / folder / "report.html", render.html(report))
    outputs.write_text(root / folder / REPORT, report.model_dump_json(indent=2) + "\n")  # last
    written = outputs.commit()
    return Outcome(report, tuple(path.relative_to(root).as_posix() for path in written))


def chance_level(drift: Any, rows: int, reference_rows: int) -> float:
    """The value the statistic exceeds by chance 5% of the time for one feature with no
    drift, at these sample sizes: PSI is about chi-square with bins-1 degrees of
    freedom times (1/n + 1/m); KS's critical D is 1.36 * sqrt(1/n + 1/m)."""
    from scipy.stats import chi2

    scale = 1 / max(rows, 1) + 1 / max(reference_rows, 1)
    if drift.method == "ks":
        return float(1.358 * math.sqrt(scale))
    bins = max((len(f.histogram.labels) for f in drift.features), default=2)
    return float(chi2.ppf(0.95, max(bins - 1, 1)) * scale)


def _small_batch(drift: Any, rows: int, reference_rows: int) -> list[str]:
    """A warning when the batch is too small for the threshold to mean drift."""
    level = chance_level(drift, rows, reference_rows)
    if level <= drift.threshold:
        return []
    needed = rows
    while needed < 10**7 and chance_level(drift, needed, reference_rows) > drift.threshold:
        needed *= 2
    return [
        f"small batch: with {rows} rows, {drift.method} exceeds {level:.2f} by chance in 5% "
        f"of the features of an unchanged population (threshold {drift.threshold:g}); "
        f"breaches may be false alarms: use batches of {needed} rows or more"
    ]


def _md5(hashes: Hasher, path: Path) -> str | None:
    try:
        return hashes.md5(path.as_posix())
    except OSError:  # unreadable: no md5, as for a missing file
        return None
