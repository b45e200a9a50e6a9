"""A canary or a shadow in the serving process: routing, comparison, numbers, the rollout file.

Two versions are loaded side by side: the stable one (``--version``) and the
candidate (``--canary-version``).

- **Routing** (canary): after R routed requests of which C went to the
  candidate, the next batch of n requests (:mod:`mllc.serve.batching`: the
  requests that waited together; 1 when they come one at a time) goes to the
  candidate iff ``2 * (floor((R+n)*W/100) - C) >= n``: the choice that keeps C
  nearest W% of R. One at a time, the k-th request (k from 0) goes to the
  candidate iff ``floor((k+1)*W/100) > floor(k*W/100)``: exactly W of every
  100, spread evenly, the same sequence every run; under concurrent load C
  stays within half a batch (plus one) of W% (one call predicts a batch, whichever
  version answers it, so the split costs no throughput). A shadow's weight is
  0: the stable version answers everything. A request to
  ``/versions/<v>/infer`` is answered by ``v`` and takes no routing turn.
- **Comparison**: once a request is answered, the other version's prediction
  for the same input is computed off the response path, by one background
  thread fed through a bounded queue (:data:`QUEUE_SIZE`; full: the comparison
  is skipped and counted in ``dropped``). A candidate's answer is compared
  with the stable's prediction; with a shadow, every request the stable
  answered is predicted by the candidate (counted in the candidate's numbers:
  that is all the traffic a shadow sees). The thread predicts every queued
  request in one call, so it keeps up with the traffic it competes with.
- **Numbers**: per version, requests, errors (its model raised) and latency
  percentiles (:mod:`mllc.serve.stats`); ``compared`` requests and how many of
  them ``differing`` (any prediction differs; floats within 1e-9 relative);
  per-label prediction counts of both on the compared requests.
- **The rollout file** (JSON, written atomically): at start, at least every
  second while the numbers change, and at stop after the queued comparisons
  are done (within the drain deadline).
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mllc import atomic
from mllc.serve.capture import now_iso
from mllc.serve.limits import log
from mllc.serve.model import PREDICT, ServedModel
from mllc.serve.stats import Latency, Predictions

CANARY, SHADOW = "canary", "shadow"
STABLE, CANDIDATE = "stable", "candidate"
QUEUE_SIZE = 4096  # requests waiting for their comparison
BATCH = 1024  # requests compared in one predict call at most
GATHER = 0.25  # seconds the comparison thread gathers requests before predicting them
WRITE_EVERY = 1.0  # seconds between rollout file writes while the numbers change
_STOP = object()


@dataclass(frozen=True)
class Side:
    """One loaded version."""

    version: str
    model_md5: str
    model: ServedModel


@dataclass
class _Job:
    answered: str  # STABLE or CANDIDATE: who answered (the other one predicts here)
    columns: dict[str, np.ndarray]
    prediction: np.ndarray


class _Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.latency = Latency()

    def add(self, ms: float, error: bool) -> None:
        self.requests += 1
        self.errors += error
        self.latency.add(ms)

    def to_json(self) -> dict[str, Any]:
        lat = self.latency
        return {
            "requests": self.requests,
            "errors": self.errors,
            "p50_ms": lat.percentile(0.50),
            "p95_ms": lat.percentile(0.95),
            "p99_ms": lat.percentile(0.99),
        }


def differ(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two versions' predictions for one request differ anywhere."""
    if a.shape != b.shape:
        return True
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        return not bool(np.isclose(a, b, rtol=1e-9, atol=0.0, equal_nan=True).all())
    return bool(np.asarray(a != b).any())


class Rollout:
    """Routing and the numbers of one rollout step; thread-safe."""

    def __init__(
        self,
        mode: str,
        weight: int,
        rollout_id: str,
        file: Path | None,
        stable: Side,
        candidate: Side,
    ) -> None:
        self.mode = mode
        self.weight = weight
        self.rollout_id = rollout_id
        self.file = file
        self.sides = {STABLE: stable, CANDIDATE: candidate}
        self.started = now_iso()
        self._lock = threading.Lock()
        self._routed = 0  # requests routed so far (R)
        self._to_candidate = 0  # of which the candidate answers (C)
        self._stats = {STABLE: _Stats(), CANDIDATE: _Stats()}
        self._compared = self._differing = self._dropped = 0
        classes = stable.model.classes
        predict_type = stable.model.schema.outputs[0].datatype
        self._predictions = Predictions(classes is None and predict_type.startswith("FP"))
        self._changes = 0  # bumped on every change; the writer compares with what it wrote
        self._written = -1
        self._queue: queue.Queue[object] = queue.Queue(QUEUE_SIZE)
        self._stopped = threading.Event()
        self._closing = threading.Event()  # set at stop: compare what is queued now
        self._comparer = threading.Thread(target=self._compare_loop, name="compare", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="rollout-file", daemon=True)

    def info(self) -> dict[str, Any]:
        """The state file's ``rollout`` object (and the metadata's ``parameters.rollout``)."""
        candidate = self.sides[CANDIDATE]
        return {
            "mode": self.mode,
            "weight": self.weight,
            "rollout_id": self.rollout_id,
            "file": None if self.file is None else str(self.file),
            "candidate": {"version": candidate.version, "model_md5": candidate.model_md5},
        }

    def start(self) -> None:
        """Write the rollout file once (OSError if it cannot be), then keep it current."""
        self._write()
        self._comparer.start()
        self._writer.start()

    # ------------------------------------------------------------------ request path

    def route(self) -> str:
        """Which version answers the next routed request."""
        return self.route_batch(1)

    def route_batch(self, requests: int) -> str:
        """Which version answers the next ``requests`` routed requests, all of them."""
        if self.mode == SHADOW:
            return STABLE
        with self._lock:
            total = self._routed + requests
            deficit = total * self.weight // 100 - self._to_candidate
            side = CANDIDATE if 2 * deficit >= requests else STABLE
            self._routed = total
            if side == CANDIDATE:
                self._to_candidate += requests
        return side

    def answered(
        self, side: str, ms: float, columns: dict[str, np.ndarray], prediction: np.ndarray | None
    ) -> None:
        """``side`` answered a request in ``ms`` (``prediction`` None: its model raised)."""
        with self._lock:
            self._stats[side].add(ms, prediction is None)
            self._changes += 1
        if prediction is None or (side == STABLE and self.mode != SHADOW):
            return
        try:
            self._queue.put_nowait(_Job(side, columns, prediction))
        except queue.Full:
            with self._lock:
                self._dropped += 1
                self._changes += 1

    # ------------------------------------------------------------------ comparisons

    def _compare_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            # Gather for a while: a predict call costs about as much for one request as for
            # hundreds, and this thread competes with the answers for the processor.
            jobs = [first]
            self._closing.wait(GATHER)
            stop = False
            while len(jobs) < BATCH:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stop = True
                    break
                jobs.append(job)
            try:
                self._compare([j for j in jobs if isinstance(j, _Job)])
            except Exception as exc:  # never take the server down over a comparison
                log(f"rollout: comparison failed: {type(exc).__name__}: {exc}")
            if stop:
                return

    def _compare(self, jobs: list[_Job]) -> None:
        # stacked only with requests of the same columns' dtypes: as each would be alone
        groups: dict[tuple[str, ...], list[_Job]] = {}
        for job in jobs:
            key = (job.answered, *(a.dtype.str for a in job.columns.values()))
            groups.setdefault(key, []).append(job)
        for (answered, *_), group in groups.items():
            self._predict_other(answered, group)

    def _predict_other(self, answered: str, jobs: list[_Job]) -> None:
        other = CANDIDATE if answered == STABLE else STABLE
        model = self.sides[other].model
        results: list[tuple[_Job, np.ndarray | None, float]] = []
        try:
            start = time.perf_counter()
            columns = {
                name: np.concatenate([j.columns[name] for j in jobs]) for name in jobs[0].columns
            }
            predicted = model.predict(columns, (PREDICT,))[PREDICT]
            ms = (time.perf_counter() - start) * 1000
            offset = 0
            for job in jobs:
                rows = len(job.prediction)
                results.append((job, predicted[offset : offset + rows], ms))
                offset += rows
        except Exception:  # one at a time, to tell which request the model failed on
            results = []
            for job in jobs:
                start = time.perf_counter()
                try:
                    one: np.ndarray | None = model.predict(job.columns, (PREDICT,))[PREDICT]
                except Exception:
                    one = None
                results.append((job, one, (time.perf_counter() - start) * 1000))
        with self._lock:
            for job, prediction, ms in results:
                if answered == STABLE:  # a shadow's copy: the candidate's traffic
                    self._stats[CANDIDATE].add(ms, prediction is None)
                if prediction is None:
                    continue
                stable, candidate = (
                    (job.prediction, prediction)
                    if answered == STABLE
                    else (prediction, job.prediction)
                )
                self._compared += 1
                self._differing += differ(stable, candidate)
                self._predictions.add(stable, candidate)
            self._changes += 1

    # ------------------------------------------------------------------ the rollout file

    def snapshot(self) -> dict[str, Any]:
        stable, candidate = self.sides[STABLE], self.sides[CANDIDATE]
        with self._lock:
            return {
                "rollout_id": self.rollout_id,
                "mode": self.mode,
                "weight": self.weight,
                "started": self.started,
                "updated": now_iso(),
                "stable": {"version": stable.version, "model_md5": stable.model_md5},
                "candidate": {"version": candidate.version, "model_md5": candidate.model_md5},
                "candidate_stats": self._stats[CANDIDATE].to_json(),
                "stable_stats": self._stats[STABLE].to_json(),
                "compared": self._compared,
                "differing": self._differing,
                "dropped": self._dropped,
                "predictions": self._predictions.snapshot(),
            }

    def _write(self) -> None:
        if self.file is None:
            return
        with self._lock:
            changes = self._changes
        data = (json.dumps(self.snapshot(), indent=2) + "\n").encode("utf-8")
        atomic.write_bytes(self.file, data)
        self._written = changes

    def _write_loop(self) -> None:
        while not self._stopped.wait(WRITE_EVERY):
            with self._lock:
                changed = self._changes != self._written
            if changed:
                self._try_write()

    def _try_write(self) -> None:
        try:
            self._write()
        except OSError as exc:
            log(f"rollout: cannot write {self.file}: {exc.strerror or exc}")

    def close(self, deadline: float) -> None:
        """Finish the queued comparisons (until ``deadline``), then write the file a last time."""
        self._closing.set()
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=max(0.01, deadline - time.monotonic()))
        if self._comparer.is_alive():
            self._comparer.join(max(0.0, deadline - time.monotonic()))
        self._stopped.set()
        if self._writer.is_alive():
            self._writer.join(2.0)
        self._try_write()
