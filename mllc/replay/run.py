"""Measure a replay and record it; :func:`checker` is the ``ReplayCheck`` that apply,
promote and preview hand to :func:`mllc.policy.promotion.resolve_environment`.

What is replayed: the newest ``replay.max_requests`` requests the environment's local
server captured (:func:`mllc.observe.replay.captured_requests`); every prediction of
both versions is compared. Labelled feedback: captured requests carry no label and no
key a labelled batch could be joined on (their ``id`` is the server's own), so the
labelled batch ``mllc monitor`` keeps for the environment
(``monitoring/<name>/<env>/batch.parquet``) is replayed as extra requests, and the
primary metric is measured on it, overall and per class (classification: the share
of each class's rows each version predicts right) or per quartile bin of the target
(regression: the metric on each bin's rows). Latency: the first
:data:`mllc.policy.replay.LATENCY_SAMPLE` captured requests are predicted one at a
time by each version in turn, as the server would, and their 95th percentiles compared.

A record ``.mllc/replay/<name>/<env>/<candidate md5>-<running md5>.json`` keeps the
numbers and the fingerprint of what was replayed: the same captures are not replayed
twice, and ``plan`` shows the verdict without loading a model.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mllc.atomic import write_text
from mllc.errors import MllcError
from mllc.observe.replay import (
    RECORD_FORMAT,
    Captured,
    captured_requests,
    read_record,
    record_path,
)
from mllc.policy.replay import (
    LATENCY_SAMPLE,
    ReplayCheck,
    ReplayNumbers,
    ReplayVerdict,
    Score,
    bin_label,
    differing,
    judge,
    p95,
    quartile_edges,
)
from mllc.spec.models import Lifecycle
from mllc.spec.rollout import Replay
from mllc.spec.vocab import higher_is_better
from mllc.targets.base import model_file
from mllc.types import RegisteredVersion

Progress = Callable[[str], None]


def _load(root: Path, version: RegisteredVersion) -> Any:
    from mllc.serve.model import load  # noqa: PLC0415 (start-up: numpy, joblib)

    return load(model_file(root, version.model_md5), version.model_md5)


def _column(values: Sequence[Any]) -> Any:
    import numpy as np  # noqa: PLC0415 (start-up: numpy)

    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return np.asarray(values, dtype=object)


def _predict(model: Any, columns: dict[str, list[Any]]) -> list[Any] | None:
    """The model's predictions for these columns, None when it refuses them."""
    from mllc.serve.model import PredictError  # noqa: PLC0415 (start-up: numpy)

    missing = [n for n in model.feature_names if n not in columns]
    if missing:
        return None
    try:
        got = model.predict({n: _column(columns[n]) for n in model.feature_names}, ("predict",))
    except PredictError:
        return None
    return list(got["predict"].tolist())


def _rows(inputs: dict[str, list[Any]]) -> int:
    return len(next(iter(inputs.values())))


def _all_predictions(model: Any, requests: Sequence[dict[str, list[Any]]]) -> list[Any]:
    """One prediction per row of every request (None where the model refused the request):
    all requests at once, one by one only when that fails."""
    names = sorted({n for r in requests for n in r})
    if all(set(r) == set(names) for r in requests):
        joined = {n: [v for r in requests for v in r[n]] for n in names}
        found = _predict(model, joined)
        if found is not None:
            return found
    out: list[Any] = []
    for request in requests:
        got = _predict(model, request)
        out += got if got is not None else [None] * _rows(request)
    return out


def _latencies(
    candidate: Any, running: Any, requests: Sequence[dict[str, list[Any]]]
) -> tuple[float, float] | None:
    """p95 in ms of each version predicting the first requests one at a time, in turn."""
    mine: list[float] = []
    theirs: list[float] = []
    for i, request in enumerate(requests[:LATENCY_SAMPLE]):
        order = [(candidate, mine), (running, theirs)]
        for model, times in order if i % 2 == 0 else reversed(order):
            started = time.perf_counter()
            _predict(model, request)
            times.append((time.perf_counter() - started) * 1000)
    a, b = p95(mine), p95(theirs)
    return None if a is None or b is None else (round(a, 4), round(b, 4))


def _labels(y: Any, model: Any) -> Any:
    """Labels in the type of the model's classes (a batch read from CSV holds text)."""
    classes = model.classes
    if classes is None or not len(classes):
        return y
    kind = type(classes[0].item()) if hasattr(classes[0], "item") else type(classes[0])
    try:
        return y.map(lambda v: v if isinstance(v, kind) else kind(v))
    except (TypeError, ValueError):
        return y


def _scores(spec: Lifecycle, y: Any, mine: list[Any], theirs: list[Any]) -> tuple[Score, ...]:
    """The primary metric of each version on the labelled rows: overall first, then per
    class (the share of the class's rows predicted right) or per quartile bin."""
    import numpy as np  # noqa: PLC0415 (start-up: numpy)

    from mllc.stages import metrics  # noqa: PLC0415 (start-up: scikit-learn)

    task, metric = spec.problem.task, spec.problem.metric
    truth = np.asarray(y)

    def value(rows: Any, predicted: list[Any]) -> float | None:
        got = metrics.score(task, truth[rows], metrics.Predictions(np.asarray(predicted)[rows]))
        return got.get(metric)

    every = np.ones(len(truth), dtype=bool)
    out = [Score(metric, value(every, mine), value(every, theirs), higher_is_better(metric))]
    if task == "classification":
        for label in sorted({str(v) for v in truth}):
            rows = np.asarray([str(v) == label for v in truth])
            right = [
                float(np.mean([str(p) == label for p in np.asarray(pred, dtype=object)[rows]]))
                for pred in (mine, theirs)
            ]
            out.append(Score(label, right[0], right[1]))
        return tuple(out)
    edges = quartile_edges([float(v) for v in truth])
    bins = [bin_label(float(v), edges) for v in truth]
    for label in dict.fromkeys(sorted(set(bins), key=bins.index)):
        rows = np.asarray([b == label for b in bins])
        out.append(Score(label, value(rows, mine), value(rows, theirs), higher_is_better(metric)))
    return tuple(out)


def _labelled(root: Path, spec: Lifecycle, path: str, models: tuple[Any, Any]) -> Any:
    """(rows, candidate predictions, running predictions, labels) of the labelled batch."""
    import pandas as pd

    target = spec.problem.target
    try:
        frame = pd.read_parquet(root / path, engine="pyarrow")
    except (OSError, ValueError) as exc:
        raise MllcError(f"the labelled batch {path} cannot be read: {exc}") from None
    frame = frame[frame[target].notna()] if target in frame.columns else frame.iloc[0:0]
    columns = {str(c): frame[c].tolist() for c in frame.columns if c != target}
    if frame.empty:
        return 0, [], [], None
    mine, theirs = (_predict(m, columns) for m in models)
    if mine is None or theirs is None:
        raise MllcError(f"the labelled batch {path} lacks a feature column of the models")
    y = frame[target] if spec.problem.task == "classification" else frame[target].astype(float)
    return len(frame), mine, theirs, _labels(y, models[1])


def measure(
    root: Path,
    spec: Lifecycle,
    env: str,
    candidate: RegisteredVersion,
    running: RegisteredVersion,
    progress: Progress = lambda _line: None,
) -> ReplayNumbers:
    """Replay what ``env`` captured against both versions and record the numbers."""
    name = spec.metadata.name
    limits = spec.environments[env].replay or Replay()
    captured = captured_requests(root, name, env, limits.max_requests)
    count = len(captured.inputs)
    if count < limits.min_requests:  # no verdict: no model is loaded for it
        return ReplayNumbers(env, candidate.version, running.version, count)
    found = read_record(root, name, env, candidate.model_md5, running.model_md5)
    if found is not None and found.fingerprint == captured.fingerprint:
        progress(f"    {env}: the replay of {count} captured requests recorded {found.time}")
        return found.numbers
    progress(
        f"    {env}: replaying {count} captured requests of {env} against "
        f"{candidate.version} and {running.version}"
    )
    numbers = _replay(root, spec, env, (candidate, running), captured)
    _record(root, name, env, (candidate, running), captured, numbers)
    return numbers


def _replay(
    root: Path,
    spec: Lifecycle,
    env: str,
    pair: tuple[RegisteredVersion, RegisteredVersion],
    captured: Captured,
) -> ReplayNumbers:
    models = (_load(root, pair[0]), _load(root, pair[1]))
    task = spec.problem.task
    mine, theirs = (_all_predictions(m, captured.inputs) for m in models)
    labelled, scores = 0, tuple[Score, ...]()
    if captured.labelled is not None:
        labelled, more_mine, more_theirs, y = _labelled(root, spec, captured.labelled, models)
        if labelled:
            scores = _scores(spec, y, more_mine, more_theirs)
            mine, theirs = mine + more_mine, theirs + more_theirs
    refused = sum(a is None or b is None for a, b in zip(mine, theirs, strict=True))
    answered = [
        (a, b) for a, b in zip(mine, theirs, strict=True) if a is not None and b is not None
    ]
    differ = differing([a for a, _ in answered], [b for _, b in answered], task) + refused
    return ReplayNumbers(
        environment=env,
        candidate=pair[0].version,
        running=pair[1].version,
        requests=len(captured.inputs),
        differing=differ,
        predictions=len(mine),
        labelled=labelled,
        metric=scores[0] if scores else None,
        groups=tuple(scores[1:]),
        group_kind="class" if task == "classification" else "bin",
        p95_ms=_latencies(models[0], models[1], captured.inputs),
    )


def _record(
    root: Path,
    name: str,
    env: str,
    pair: tuple[RegisteredVersion, RegisteredVersion],
    captured: Captured,
    numbers: ReplayNumbers,
) -> None:
    candidate, running = pair
    record = {
        "format": RECORD_FORMAT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fingerprint": captured.fingerprint,
        "candidate": {"version": candidate.version, "model_md5": candidate.model_md5},
        "running": {"version": running.version, "model_md5": running.model_md5},
        "labelled_batch": captured.labelled,
        "numbers": dataclasses.asdict(numbers),
    }
    path = root / record_path(name, env, candidate.model_md5, running.model_md5)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def checker(root: Path, spec: Lifecycle, env: str, progress: Progress) -> ReplayCheck:
    """wins_on_replay for apply and promote: replays (once per pair) and judges."""
    limits = spec.environments[env].replay or Replay()
    verdicts: dict[tuple[str, str], ReplayVerdict] = {}

    def check(candidate: RegisteredVersion, running: RegisteredVersion) -> ReplayVerdict:
        key = (candidate.model_md5, running.model_md5)
        if key not in verdicts:
            numbers = measure(root, spec, env, candidate, running, progress)
            verdicts[key] = judge(numbers, limits)
        return verdicts[key]

    return check
