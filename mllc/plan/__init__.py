"""The plan: its typed model (the JSON contract), the pure diff that makes its changes,
what it was bound to, and its renderers (text, JSON, Markdown).

Making a plan (observing the world, then diffing) is the operation
:mod:`mllc.ops.plan`.
"""
