"""``mllc preview``: run the pipelines a plan would retrain in an isolated Git worktree
and report what they produce, before merge.

- ``model.py``: the result as typed, frozen data (the JSON contract, ``format_version`` 1)
- ``compare.py``: pure: reports and registry facts to a :class:`model.LifecyclePreview`
- ``render.py``: pure renderers: text, JSON, Markdown (the pull-request comment)
- ``worktree.py``: the isolated checkout under ``.mllc/preview/`` and its removal
- ``dvcrun.py``: reading DVC's output lines: which stage ran, was cached, or was skipped

The operation that ties them together is :mod:`mllc.ops.preview`.
"""
