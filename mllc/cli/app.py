"""The ``mllc`` command line: parse flags, call :mod:`mllc.api`, render, map errors to exit codes.

No logic lives here. Heavy libraries are imported inside the commands that
need them so that ``mllc validate`` starts fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from mllc import __version__
from mllc.cli import card, init, score
from mllc.cli.base import (
    STATE,
    Candidates,
    NamesOrPaths,
    OutputFormat,
    PlanFormat,
    SpecPaths,
    Target,
    handle_errors,
)
from mllc.cli.output import run_validate, use_color
from mllc.cli.preview import preview as preview_command
from mllc.cli.verify import verify as verify_command
from mllc.errors import EXIT_CHANGES, EXIT_ERROR, MllcError

app = typer.Typer(
    name="mllc",
    help="GitOps for machine-learning model lifecycles: validate specs, compile them to DVC "
    "pipelines and deployments, plan and apply the difference.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"mllc {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    show_traceback: Annotated[
        bool, typer.Option("--traceback", help="Show the traceback of an unexpected error.")
    ] = False,
) -> None:
    STATE["traceback"] = show_traceback


@app.command()
@handle_errors
def validate(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Spec files or folders to validate (default: specs/)."),
    ] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="text for people, json for machines.")
    ] = OutputFormat.text,
) -> None:
    """Check specs: every error at once, each with file:line:column and the field path."""
    code = run_validate(paths or ["specs"], fmt.value, STATE["traceback"])
    if code:
        raise typer.Exit(code)


@app.command()
@handle_errors
def schema(
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="lifecycle (the spec language), plan (plan --json), monitor (its reports) "
            "or verify (verify --json).",
        ),
    ] = "lifecycle",
    out: Annotated[
        str | None,
        typer.Option("--out", "-o", help="Where to write it ('-': stdout; default schemas/)."),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when the file differs; write nothing.")
    ] = False,
) -> None:
    """Write a JSON Schema: the spec language's (for editors), the plan's or the monitoring
    report's (for other tools)."""
    from mllc import api

    text = api.schema_text(kind)
    out = out or api.SCHEMA_FILES[kind]
    if out == "-":
        sys.stdout.write(text)
        return
    if check:
        current = Path(out).read_text(encoding="utf-8") if os.path.exists(out) else None
        if current != text:
            again = f"--kind {kind} " if kind != "lifecycle" else ""
            raise MllcError(f"{out} is stale: run 'mllc schema {again}--out {out}'")
        print(f"{out} is up to date", file=sys.stderr)
        return
    changed = api.write_text(out, text)
    print(f"{'wrote' if changed else 'unchanged'} {out}", file=sys.stderr)


@app.command(name="compile")
@handle_errors
def compile_cmd(
    paths: Annotated[
        list[str] | None, typer.Argument(help="Spec files or folders (default: specs/).")
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 when a generated file differs."),
    ] = False,
) -> None:
    """Generate pipelines/<name>/dvc.yaml and params.yaml from every spec (deterministic)."""
    from mllc import api

    report = api.compile(paths or ["specs"], check=check)
    for path in report.written:
        print(f"{'differs ' if check else 'wrote   '} {path}")
    print(
        f"{len(report.written)} {'differ' if check else 'written'}, "
        f"{len(report.unchanged)} unchanged",
        file=sys.stderr,
    )
    if check and report.written:
        raise MllcError("generated files are stale: run 'mllc compile'")


@app.command()
@handle_errors
def plan(
    paths: SpecPaths = None,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    fmt: Annotated[
        PlanFormat,
        typer.Option(
            "--format",
            help="text for people, json (the versioned plan) for machines, markdown for a "
            "pull-request comment.",
        ),
    ] = PlanFormat.text,
    out: Annotated[
        str | None,
        typer.Option("--out", help="Save the plan, bound to what it saw, for 'mllc apply FILE'."),
    ] = None,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode", help="Exit 0 with no changes, 1 on error, 2 with changes."
        ),
    ] = False,
    target: Target = None,
) -> None:
    """Show what apply would change and why. Runs no spec code, loads no model."""
    from mllc import api
    from mllc.plan.render import human, to_json

    if as_json and fmt is PlanFormat.markdown:
        raise MllcError("--json is --format json: give one of them")
    planned = api.plan(paths or ["specs"], target=target)
    if out:
        api.write_text(out, to_json(planned.plan))
    if as_json or fmt is PlanFormat.json:
        sys.stdout.write(to_json(planned.plan))
    elif fmt is PlanFormat.markdown:
        sys.stdout.write(api.plan_comment(planned))
    else:
        sys.stdout.write(human(planned.plan, color=use_color(sys.stdout)))
        if out:
            print(f"\nSaved the plan to {out}; apply exactly it with: mllc apply {out}")
    if planned.plan.blocked:
        raise MllcError(
            f"{len(planned.plan.blocked)} change(s) are blocked: "
            + "; ".join(f"{c.address}: {c.reasons[0]}" for c in planned.plan.blocked)
        )
    if detailed_exitcode and planned.plan.has_changes:
        raise typer.Exit(EXIT_CHANGES)


@app.command()
@handle_errors
def apply(
    plan_file: Annotated[
        str | None, typer.Argument(help="A plan saved by 'mllc plan --out' (else: plan now).")
    ] = None,
    specs: Annotated[
        list[str] | None, typer.Option("--specs", help="Spec files or folders (default: specs/).")
    ] = None,
    auto_approve: Annotated[
        bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")
    ] = False,
    lock_timeout: Annotated[
        float | None,
        typer.Option("--lock-timeout", help="Wait up to this many seconds for another apply."),
    ] = None,
    target: Target = None,
) -> None:
    """Make the world match the specs: write files, run stale stages, register versions."""
    from mllc import api
    from mllc.plan.render import human

    color = use_color(sys.stdout)
    if plan_file:
        planned = api.check_saved_plan(api.load_plan(plan_file))
        approved = True  # a saved plan was reviewed when it was made
    else:
        planned = api.plan(specs or ["specs"], target=target)
        approved = auto_approve
    sys.stdout.write(human(planned.plan, color=color))
    if not planned.plan.has_changes:
        return
    if not approved:
        if not sys.stdin.isatty():
            raise MllcError("apply needs a confirmation: no terminal to ask, use --auto-approve")
        deletions = [c for c in planned.plan.changes if c.action == "delete"]
        if deletions:
            print(f"\n{len(deletions)} deletion(s): generated files go, registry history stays.")
        answer = input("\nDo you want to perform these actions? Only 'yes' is accepted: ")
        if answer.strip() != "yes":
            raise MllcError("apply cancelled")
    print()
    result = api.apply(
        planned,
        progress=lambda line: print(line, flush=True),
        lock_timeout=lock_timeout,
        saved=plan_file is not None,
    )
    registered = f", registered {', '.join(result.registered)}" if result.registered else ""
    print(f"\nApply complete{registered}.")


app.command(name="preview")(handle_errors(preview_command))
app.command(name="verify")(handle_errors(verify_command))


@app.command()
@handle_errors
def predict(
    lifecycle: Annotated[str, typer.Argument(help="The lifecycle (metadata.name).")],
    env: Annotated[str, typer.Option("--env", help="The environment whose server answers.")],
    input_: Annotated[
        str | None,
        typer.Option("--input", help="A CSV or JSON file of rows (records or columns)."),
    ] = None,
    rows: Annotated[
        str | None, typer.Argument(help="Rows as inline JSON, instead of --input.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the V2 response.")] = False,
) -> None:
    """Send rows to a deployed environment (Open Inference Protocol V2) and print predictions."""
    from mllc import api
    from mllc.ops.predict import render

    source = input_ or rows
    if not source:
        raise MllcError("give rows: --input FILE or inline JSON")
    answer = api.predict(lifecycle, env, api.read_rows(source))
    if as_json:
        print(json.dumps(answer, indent=2))
    else:
        version = str(answer.get("model_version") or "")
        classes = api.version_classes(lifecycle, version) if version else None
        sys.stdout.write(render(answer, classes))


@app.command()
@handle_errors
def monitor(
    lifecycle: Annotated[str, typer.Argument(help="The lifecycle (metadata.name).")],
    env: Annotated[
        str | None,
        typer.Option("--env", help="The environment (default: the only one)."),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option("--data", help="The batch: a CSV or Parquet file or URL (labelled or not)."),
    ] = None,
    captured: Annotated[
        bool,
        typer.Option("--captured", help="The requests the local server captured (default)."),
    ] = False,
    specs: Annotated[
        list[str] | None, typer.Option("--specs", help="Spec files or folders (default: specs/).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a batch for drift (and, with labels, performance) against the training data.

    Exit 0: no breach. 2: a breach (the next plan shows it). 1: an error.
    """
    from mllc import api
    from mllc.monitor.text import summary

    outcome = api.monitor(specs or ["specs"], lifecycle, env, data, captured)
    report = outcome.report
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        sys.stdout.write(summary(report, outcome.written))
    if report.breach:
        raise typer.Exit(EXIT_CHANGES)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def serve(ctx: typer.Context) -> None:
    """Run one inference server (started by 'mllc apply'; see 'mllc serve --help')."""
    from mllc.serve.server import main as serve_main

    raise typer.Exit(serve_main(list(ctx.args)))


@app.command()
@handle_errors
def promote(
    lifecycle: Annotated[str, typer.Argument(help="The lifecycle (metadata.name).")],
    version: Annotated[str, typer.Argument(help="A registered version, vX.Y.Z.")],
    to: Annotated[str, typer.Option("--to", help="The environment to promote it to.")],
    specs: Annotated[
        list[str] | None, typer.Option("--specs", help="Spec files or folders (default: specs/).")
    ] = None,
) -> None:
    """Pin VERSION in an environment on a new branch, for a pull request (deploys nothing).

    Refused when apply would block it (gates, after, beats_champion).
    """
    from mllc import api
    from mllc.ops.promote import render

    sys.stdout.write(render(api.promote(specs or ["specs"], lifecycle, version, to)))


@app.command()
@handle_errors
def rollback(
    lifecycle: Annotated[str, typer.Argument(help="The lifecycle (metadata.name).")],
    env: Annotated[str, typer.Option("--env", help="The environment to roll back.")],
    specs: Annotated[
        list[str] | None, typer.Option("--specs", help="Spec files or folders (default: specs/).")
    ] = None,
) -> None:
    """Pin the version an environment ran before its current one, on a new branch."""
    from mllc import api
    from mllc.ops.promote import render

    sys.stdout.write(render(api.rollback(specs or ["specs"], lifecycle, env)))


@app.command(name="diff")
@handle_errors
def diff_cmd(
    base: Annotated[str, typer.Argument(help="The Git ref to compare from (e.g. origin/main).")],
    head: Annotated[str, typer.Argument(help="The Git ref to compare to (e.g. HEAD).")],
    paths: Annotated[
        list[str] | None, typer.Argument(help="Spec files or folders (default: specs/).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What the spec changes between two Git refs mean: retrain, re-evaluate, redeploy."""
    from mllc import api
    from mllc.ops.diff import render, to_json

    result = api.diff(base, head, paths or ["specs"])
    sys.stdout.write(to_json(result) if as_json else render(result))


@app.command(name="force-unlock")
@handle_errors
def force_unlock(
    lock_id: Annotated[str, typer.Argument(help="The lock id the error message names.")],
) -> None:
    """Remove an apply lock left by a process that is gone (check it is gone first)."""
    from mllc import api

    print(f"removed the lock: {api.force_unlock(lock_id)}")


@app.command()
@handle_errors
def status(
    paths: NamesOrPaths = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="text or json.")] = (
        OutputFormat.text
    ),
    candidates: Candidates = False,
) -> None:
    """Per lifecycle: pipeline freshness, versions and their metrics, gates, deployments."""
    from mllc import api
    from mllc.ops.status import render, render_candidates

    report = api.status(paths or ["specs"], candidates=candidates)
    if as_json or fmt is OutputFormat.json:
        print(json.dumps(report, indent=2))
    elif candidates:
        sys.stdout.write(render_candidates(report))
    else:
        sys.stdout.write(render(report))


app.command(name="card")(handle_errors(card.card))
app.command(name="lineage")(handle_errors(card.lineage))
app.command(name="score")(handle_errors(score.score))
app.command(name="init")(handle_errors(init.init))


@app.command()
@handle_errors
def show(
    spec: Annotated[str, typer.Argument(help="A spec file.")],
    fmt: Annotated[
        str, typer.Option("--format", help="yaml or json.", case_sensitive=False)
    ] = "yaml",
) -> None:
    """Print a spec as mllc reads it: validated, with every default filled in."""
    from mllc import api

    if fmt not in ("yaml", "json"):
        raise MllcError(f"--format must be yaml or json, not {fmt!r}")
    lifecycle = api.load(spec)
    if fmt == "json":
        print(json.dumps(lifecycle.dump(), indent=2))
    else:
        sys.stdout.write(api.dump_yaml(lifecycle))


@app.command()
@handle_errors
def explain(
    field: Annotated[
        str | None, typer.Argument(help="A field path, e.g. data.split.test; none: the top.")
    ] = None,
) -> None:
    """Explain a field of the spec language: its type, default and meaning."""
    from mllc import api

    print(api.explain(field or ""))


@app.command()
@handle_errors
def stage(
    name: Annotated[str, typer.Argument(help="prepare, split, train, evaluate or select.")],
    lifecycle: Annotated[str, typer.Argument(help="The lifecycle (metadata.name).")],
    candidate: Annotated[
        str | None, typer.Argument(help="The candidate model (train only).")
    ] = None,
) -> None:
    """Run one built-in pipeline stage; called by the generated dvc.yaml, from the repo root.

    Reads pipelines/LIFECYCLE/params.yaml and writes the stage's outputs atomically.
    """
    from mllc.stages import run_stage

    run_stage(name, lifecycle, candidate)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and return its exit code."""
    try:
        app(args=argv, prog_name="mllc", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_ERROR)
    return 0
