"""``mllc verify``'s parts: the verdict as data, the pure comparisons of a rebuild with
what was recorded, the DVC cache read with every byte hashed, and the renderers.

The orchestration (registry, worktree, ``dvc repro``) is :mod:`mllc.ops.verify`.
"""
