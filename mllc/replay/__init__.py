"""The replay of ``require: [wins_on_replay]``: an environment's captured requests (and
its labelled feedback) predicted offline by a candidate and by the version the
environment runs, both loaded hash-checked from the DVC cache.

Only the commands that run models call it (``apply``, ``promote``, ``preview``);
``plan`` and ``status`` read the recorded replays (:mod:`mllc.observe.replay`).
"""

from mllc.replay.run import checker, measure

__all__ = ["checker", "measure"]
