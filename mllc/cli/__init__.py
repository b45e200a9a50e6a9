"""The command line: :mod:`~mllc.cli.app` (the typer commands) and :mod:`~mllc.cli.output`
(messages, colours, the fast ``validate`` path). Kept empty so that importing
``mllc.cli.output`` does not load typer (start-up of ``mllc validate``).
"""
