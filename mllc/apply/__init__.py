"""Executing a plan: the apply lock (:mod:`.lock`) and the step journal (:mod:`.journal`).

Both live under ``<root>/.mllc/``. The lock makes applies to one workspace run one
at a time; the journal records each step before and after it runs, as history and
for crash recovery. Neither is ever the source of truth: the next apply observes
the world again and converges.
"""
