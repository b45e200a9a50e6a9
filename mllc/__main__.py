"""``python -m mllc`` and the ``mllc`` console script.

``mllc validate`` runs on every pull request and in editors, and ``mllc stage``
once per pipeline stage, so their plain forms skip building the Typer app, which
costs more than validating a spec; anything else (``--help``, other flags, other
commands) goes through :mod:`mllc.cli.app`. Both paths call the same functions.
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


def _plain_stage(args: list[str]) -> list[str] | None:
    """[name, lifecycle(, candidate)] for ``stage NAME LIFECYCLE [CANDIDATE]``, else None."""
    if len(args) in (3, 4) and args[0] == "stage" and not any(a.startswith("-") for a in args):
        return args[1:]
    return None


def _run_stage(args: list[str]) -> int:
    """What DVC runs once per stage: skipping Typer keeps our start-up off its bill, and
    under apply or preview the stage runs warm (:mod:`mllc.stagerun`) when it can."""
    from mllc.stagerun import run_warm

    status = run_warm(args)
    if status is not None:
        return status
    from mllc.stages import command

    return command(args)


def main() -> None:
    stage = _plain_stage(sys.argv[1:])
    if stage is not None:
        sys.exit(_run_stage(stage))
    plain = _plain_validate(sys.argv[1:])
    if plain is not None:
        from mllc.cli.output import run_validate
        from mllc.errors import EXIT_INTERRUPTED

        try:  # run_validate turns any other exception into exit 3 and a one-line message
            sys.exit(run_validate(plain[0] or ["specs"], plain[1]))
        except KeyboardInterrupt:
            sys.exit(EXIT_INTERRUPTED)
    from mllc.cli.app import main as run

    sys.exit(run())


if __name__ == "__main__":
    main()
