"""What every command of the CLI shares: error handling and exit codes, the output
formats, and the arguments several commands take."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer

from mllc.cli.output import error, unexpected
from mllc.errors import EXIT_ERROR, EXIT_INTERRUPTED, MllcError

STATE = {"traceback": False}


F = TypeVar("F", bound=Callable[..., Any])


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def handle_errors(fn: F) -> F:
    """Known errors: a short message and exit 1. Anything else: exit 3 and how to see more."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MllcError as exc:
            for line in exc.render():
                error(line)
            raise typer.Exit(EXIT_ERROR) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            raise typer.Exit(unexpected(exc, STATE["traceback"])) from None

    return wrapper  # type: ignore[return-value]


SpecPaths = Annotated[
    list[str] | None, typer.Argument(help="Spec files or folders (default: specs/).")
]

NamesOrPaths = Annotated[
    list[str] | None,
    typer.Argument(help="Spec files or folders, or lifecycle names (default: specs/)."),
]
Candidates = Annotated[
    bool,
    typer.Option(
        "--candidates",
        help="Every candidate of every registered version side by side: validation and test "
        "metrics, the selected one marked (*), the environments each version runs in.",
    ),
]


Target = Annotated[
    str | None,
    typer.Option("--target", help="Only this address and what is under it (exceptional use)."),
]


class PlanFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
