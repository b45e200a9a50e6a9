"""Promotion policy, pure: gates over held-out metrics, and which registered version each
environment should run given the gates and its ``after``/``require`` rules.

No I/O: callers bring the registry's versions and assignment history
(:mod:`mllc.registry`), so plan, apply, promote and status decide the same way.
"""
