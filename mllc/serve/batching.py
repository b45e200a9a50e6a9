"""Adaptive batching: requests queued for one model while it is busy are predicted together.

A scikit-learn call costs about the same for one row as for fifty (the
iris pipeline of bench/bench_serve.py: 6.5 ms for 1 row, 7.5 ms for 50: the
time goes into validating and converting the frame, not into the arithmetic),
so under concurrent load the server stacks the rows of the requests waiting
for the model into one frame, predicts once and splits the answers back.

- No artificial waiting: a worker takes whatever is queued the moment it is
  free, so a lone request is predicted at once, alone. Batches grow only
  while the model is busy, as large as the load makes them (at most
  ``max_batch_size`` requests).
- The same answers as unbatched: only requests whose columns have the same
  numpy dtypes are stacked (so the frame has the dtypes each would have had
  alone); every output any of them asked for is computed once and each gets
  its own rows of the ones it asked for.
- A bad request does not fail the others: when a batch's predict raises,
  each of its requests is predicted alone, so each gets its own answer or
  error.

The server's ``--workers`` threads (a :class:`Pool`, shared by its queues) take
the batch of the queue whose first request waits longest. One that finds
another worker predicting takes only a full batch: predictions hold the GIL,
and two half batches would cost two calls where one does. During a canary the
routed requests share one queue, and each batch is predicted by the version
the split picks for it (:class:`Batcher`'s ``choose``): two versions cost the
calls of one.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mllc.serve.model import PREDICT, PREDICT_PROBA, ServedModel


@dataclass
class _Item:
    columns: dict[str, np.ndarray]
    outputs: tuple[str, ...]
    rows: int
    key: tuple[str, ...]  # the columns' dtypes: only equal keys are stacked
    done: threading.Event = field(default_factory=threading.Event)
    sequence: int = 0
    side: str = ""  # the key of the model that predicted it
    result: dict[str, Any] | None = None
    error: BaseException | None = None


class Pool:
    """The prediction threads of a server, shared by its versions' batchers."""

    def __init__(self, workers: int) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.batchers: list[Batcher] = []
        self.busy = 0  # workers predicting
        self.sequence = 0  # requests queued so far: the oldest waiting one goes first
        for i in range(max(1, workers)):
            threading.Thread(target=self._work, name=f"predict-{i}", daemon=True).start()

    def _next(self) -> Batcher | None:
        """The batcher whose first request waits longest, if a worker may take it now: when
        none is predicting, or when a full batch waits (two half batches cost two calls)."""
        waiting = [b for b in self.batchers if b.queue]
        if not waiting:
            return None
        oldest = min(waiting, key=lambda b: b.queue[0].sequence)
        if self.busy and len(oldest.queue) < oldest.max_batch_size:
            full = [b for b in waiting if len(b.queue) >= b.max_batch_size]
            return min(full, key=lambda b: b.queue[0].sequence) if full else None
        return oldest

    def _work(self) -> None:
        while True:
            with self.cond:
                while (batcher := self._next()) is None:
                    self.cond.wait()
                self.busy += 1
                batch = batcher.take()
            try:
                batcher.run(batch)
            finally:
                with self.cond:
                    self.busy -= 1
                    self.cond.notify_all()


class Batcher:
    """Predicts on the pool's threads; ``predict`` blocks until its own rows are done.

    ``models`` by a key; a batch is predicted by ``choose(n)``'s one (n: its requests),
    or by the only one when ``choose`` is None. A canary's routed requests share one
    batcher whose ``choose`` is the split (:meth:`mllc.serve.rollout.Rollout.route_batch`):
    a batch costs one call whichever version answers it."""

    def __init__(
        self,
        models: Mapping[str, ServedModel],
        max_batch_size: int,
        pool: Pool,
        choose: Callable[[int], str] | None = None,
    ) -> None:
        if choose is None and len(models) != 1:
            raise ValueError("a batcher of several models needs a choose function")
        self.models = dict(models)
        self.choose = choose
        self.max_batch_size = max_batch_size
        self.pool = pool
        self.queue: deque[_Item] = deque()
        self.batches = 0  # predict calls on stacked requests (for tests and the bench)
        self.batched = 0  # requests predicted in those calls
        with pool.cond:
            pool.batchers.append(self)

    def predict(self, columns: dict[str, np.ndarray], outputs: tuple[str, ...]) -> dict[str, Any]:
        """What ``model.predict(columns, outputs)`` returns (or raises), batched with others."""
        item = self.answer(columns, outputs)
        if item.error is not None:
            raise item.error
        assert item.result is not None
        return item.result

    def answer(self, columns: dict[str, np.ndarray], outputs: tuple[str, ...]) -> _Item:
        """The request once predicted: which model did (``side``), its ``result`` or
        ``error``."""
        rows = len(next(iter(columns.values())))
        key = tuple(a.dtype.str for a in columns.values())
        item = _Item(columns, outputs, rows, key)
        pool = self.pool
        with pool.cond:
            item.sequence = pool.sequence
            pool.sequence += 1
            self.queue.append(item)
            pool.cond.notify()
        item.done.wait()
        return item

    def take(self) -> list[_Item]:
        """The oldest waiting request and those queued behind it that stack with it (call
        with the pool's lock held)."""
        first = self.queue.popleft()
        batch = [first]
        if self.max_batch_size > 1 and self.queue:
            kept: deque[_Item] = deque()
            while self.queue and len(batch) < self.max_batch_size:
                item = self.queue.popleft()
                (batch if item.key == first.key else kept).append(item)
            kept.extend(self.queue)
            self.queue = kept
        return batch

    def run(self, batch: list[_Item]) -> None:
        side = next(iter(self.models)) if self.choose is None else self.choose(len(batch))
        model = self.models[side]
        for item in batch:
            item.side = side
        if len(batch) == 1:
            self._alone(model, batch[0])
        else:
            self._together(model, batch)

    @staticmethod
    def _alone(model: ServedModel, item: _Item) -> None:
        try:
            item.result = model.predict(item.columns, item.outputs)
        except BaseException as exc:
            item.error = exc
        item.done.set()

    def _together(self, model: ServedModel, batch: list[_Item]) -> None:
        wanted = {name for item in batch for name in item.outputs}
        outputs = tuple(n for n in (PREDICT, PREDICT_PROBA) if n in wanted)
        try:
            columns = {
                name: np.concatenate([item.columns[name] for item in batch])
                for name in batch[0].columns
            }
            total = sum(item.rows for item in batch)
            results = model.predict(columns, outputs)
            if any(len(results[name]) != total for name in outputs):
                raise ValueError("the model's outputs are not one per row")
        except Exception:
            for item in batch:  # one at a time: each its own answer or error
                self._alone(model, item)
            return
        self.batches += 1
        self.batched += len(batch)
        offset = 0
        for item in batch:
            end = offset + item.rows
            item.result = {name: results[name][offset:end] for name in item.outputs}
            offset = end
            item.done.set()
