"""``python -m mllc`` and the ``mllc`` console script.

``mllc validate`` runs on every pull request and in editors, so its plain
forms (paths and ``--format``) skip building the Typer app, which costs more
than validating a spec; anything else (``--help``, other flags, other
commands) goes through :mod:`mllc.cli`. Both paths call the same function.
"""

from __future__ import annotations

import sys


def _plain_validate(args: list[str]) -> tuple[list[str], str] | None:
    """(paths, format) for ``validate [PATHS] [--format text|json]``; None for anything else."""
    if not args or args[0] != "validate":
        return None
    paths: list[str] = []
    fmt = "text"
    rest = iter(args[1:])
    for arg in rest:
        if arg == "--format":
            fmt = next(rest, "")
        elif arg.startswith("--format="):
            fmt = arg.partition("=")[2]
        elif arg.startswith("-"):
            return None
        else:
            paths.append(arg)
    return (paths, fmt) if fmt in ("text", "json") else None


def main() -> None:
    plain = _plain_validate(sys.argv[1:])
    if plain is not None:
        from mllc.errors import EXIT_INTERRUPTED
        from mllc.output import run_validate

        try:  # run_validate turns any other exception into exit 3 and a one-line message
            sys.exit(run_validate(plain[0] or ["specs"], plain[1]))
        except KeyboardInterrupt:
            sys.exit(EXIT_INTERRUPTED)
    from mllc.cli import main as run

    sys.exit(run())


if __name__ == "__main__":
    main()
