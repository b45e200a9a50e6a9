"""The CI workflow, ``.github/workflows/mllc.yml``, rendered from the specs (docs/promotions.md).

One job per trigger, and the preview's two on pull requests:

- ``plan`` on a pull request: ``mllc validate``, ``mllc plan``; the Markdown plan goes to
  the job summary and to ONE pull-request comment, found again by its hidden marker and
  edited in place on every push; the job fails when the plan exits 1 (errors or blocked
  gates), after the comment is posted.
- ``preview`` and ``preview-comment`` on a pull request (:mod:`mllc.compile.preview_jobs`):
  the first runs ``mllc preview`` (the pull request's training, so with a read-only token
  and no secrets), the second only reads its Markdown and keeps a second sticky comment.
- ``apply`` on a push to the default branch: ``dvc pull``, ``mllc apply --auto-approve``,
  then push the apply commit and the registry tags. When a lifecycle deploys to
  Kubernetes, the job runs in a GitHub *environment* named after the Kubernetes
  environment(s), so required reviewers can guard it.
- ``verify`` after an apply that registered versions (:data:`VERIFY_JOB`): ``mllc
  verify`` rebuilds each new version from its tag on a fresh runner, every stage
  recomputed, and fails when the model is not bit-identical or a record does not match;
  the report goes to the job summary. ``verify-all`` does the same for every registered
  version on the weekly :data:`VERIFY_CRON` (and by hand): a version that no longer
  rebuilds, or a record changed since, is found without waiting for a retrain.
- ``monitor`` on the specs' ``monitoring.schedule`` crons (and by hand): one
  ``mllc monitor NAME --env ENV --data BATCH`` step per monitored lifecycle and
  environment, each run only by its own cron; the batch's path or URL comes from the
  repository variable ``MLLC_BATCH_<NAME>_<ENV>``. On a breach (exit 2) it opens a pull
  request on a new branch with the report (and the labelled batch), its body the report
  and the retraining plan; merging it lets the apply job retrain.

Hardened by construction: every action pinned by commit SHA, ``permissions: {}`` at the
top with each job asking only for what it needs, no ``pull_request_target``, no ``${{ }}``
expression inside a ``run:`` script (values reach scripts through ``env:``), no checkout
persisting credentials (the push step alone gets the token), one apply at a time. The
document is built as data and dumped by PyYAML: the same specs give byte-identical text.

CI installs the published package, the same way users install it, pinned to the version
that compiled the workflow (``pip install mllc==X.Y.Z``): a new mllc release changes what
CI runs only when the repository recompiles with it, in a pull request of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mllc.compile import HEADER, dump_yaml
from mllc.compile.actions import (
    ACTIONS,
    BOT_EMAIL,
    BOT_NAME,
    COMMENT_LIMIT,
    GITHUB_SCRIPT,
    REMOTE_CREDENTIALS,
    RUNNER,
    Block,
    WorkflowDumper,
    dvc_pull,
    script,
    setup,
    sticky_comment_js,
    uses,
    with_env,
)
from mllc.compile.preview_jobs import PREVIEW_MARKER as PREVIEW_MARKER
from mllc.compile.preview_jobs import preview_comment_job, preview_job
from mllc.layout import Layout
from mllc.spec.models import Lifecycle

WORKFLOW_PATH = ".github/workflows/mllc.yml"
DEFAULT_BRANCH = "main"

# When every registered version is rebuilt and compared (Mondays 05:17 UTC: off the hour,
# when GitHub's scheduler is least loaded).
VERIFY_CRON = "17 5 * * 1"
VERIFY_JOB = "verify"

# The first line of the pull-request comment mllc keeps updated (rendered by
# mllc.plan.markdown; the workflow finds its own comment by it).
MARKER = "<!-- mllc-plan -->"


# Finds the comment by its marker (only among the bot's own) and edits it, else creates
# it: one comment per pull request however many pushes. A fork's read-only token cannot
# comment; the plan is still in the job summary and the gate still fails the job.
_COMMENT_SCRIPT = f"""\
const fs = require('fs');
const marker = process.env.MARKER;
let body = fs.readFileSync('plan.md', 'utf8');
if (!body.includes(marker)) {{
  body = marker + '\\n' + body;
}}
if (body.length > {COMMENT_LIMIT}) {{
  body = body.slice(0, {COMMENT_LIMIT}) + '\\n\\n_Plan truncated: see the job summary._\\n';
}}
""" + sticky_comment_js(
    "c.body.includes(marker)",
    """{
    await github.rest.issues.createComment({ owner, repo, issue_number, body });
  }""",
)


def _plan_job() -> dict[str, Any]:
    return {
        "name": "mllc plan",
        "if": "github.event_name == 'pull_request'",
        "runs-on": RUNNER,
        "permissions": {"contents": "read", "pull-requests": "write"},
        # A newer push supersedes the running plan; one run per pull request at a time
        # also keeps two runs from both creating the comment.
        "concurrency": {
            "group": "mllc-plan-${{ github.event.pull_request.number }}",
            "cancel-in-progress": True,
        },
        "steps": [
            *setup(),
            {"name": "Validate the specs", "run": "mllc validate"},
            {
                "name": "Plan",
                "id": "plan",
                "run": script(
                    "set +e",
                    "mllc plan --detailed-exitcode --out plan.json",
                    "code=$?",
                    "set -e",
                    'echo "exitcode=$code" >> "$GITHUB_OUTPUT"',
                    "# 0: no changes, 2: changes; anything else fails the job after the comment",
                ),
            },
            {
                "name": "Render the plan as Markdown",
                "run": script(
                    "mllc plan --format markdown > plan.md || true",
                    "if [ ! -s plan.md ]; then",
                    "  printf '%s\\n\\n**mllc plan failed**: see the job log.\\n' \"$MARKER\" "
                    "> plan.md",
                    "fi",
                    'cat plan.md >> "$GITHUB_STEP_SUMMARY"',
                ),
                "env": {"MARKER": MARKER},
            },
            {
                "name": "Comment the plan on the pull request",
                "uses": uses(GITHUB_SCRIPT),
                "env": {"MARKER": MARKER},
                "with": {"script": Block(_COMMENT_SCRIPT)},
            },
            {
                "name": "Fail when the plan failed or a gate blocks",
                "if": "steps.plan.outputs.exitcode != '0' && steps.plan.outputs.exitcode != '2'",
                "env": {"PLAN_EXIT": "${{ steps.plan.outputs.exitcode }}"},
                "run": script(
                    'echo "::error::mllc plan exited $PLAN_EXIT: errors or blocked gates '
                    '(see the plan above)."',
                    "exit 1",
                ),
            },
        ],
    }


def _kubernetes_environments(specs: Sequence[Lifecycle]) -> list[str]:
    return sorted(
        {
            env_name
            for spec in specs
            for env_name, env in spec.environments.items()
            if env.target == "kubernetes"
        }
    )


def _remote_env(specs: Sequence[Lifecycle]) -> dict[str, str]:
    """What a step that trains, fetches or pushes needs: the remote's credentials, and each
    Dask scheduler's address that a spec names by reference (``compute.scheduler:
    env:NAME``), from the repository variable of the same name (docs/compute.md)."""
    names = {
        spec.compute.scheduler.removeprefix("env:")
        for spec in specs
        if spec.compute is not None and spec.compute.scheduler is not None
    }
    return {**REMOTE_CREDENTIALS, **{n: f"${{{{ vars.{n} }}}}" for n in sorted(names)}}


def _apply_job(specs: Sequence[Lifecycle], branch: str) -> dict[str, Any]:
    job: dict[str, Any] = {
        "name": "mllc apply",
        "if": f"github.event_name == 'push' && github.ref == 'refs/heads/{branch}'",
        "runs-on": RUNNER,
        "permissions": {"contents": "write"},
        # One apply at a time, never cancelled halfway: the next waits for this one.
        "concurrency": {"group": "mllc-apply", "cancel-in-progress": False},
    }
    job["outputs"] = {"versions": "${{ steps.apply.outputs.versions }}"}
    protected = _kubernetes_environments(specs)
    if protected:
        # One GitHub environment for the whole apply (one job deploys everything): named
        # after the Kubernetes environment, or after all of them joined with '+'.
        job["environment"] = "+".join(protected)
    remote = _remote_env(specs)
    job["steps"] = [
        *setup(history=True),
        with_env(dvc_pull(), REMOTE_CREDENTIALS),
        {
            "name": "Apply",
            "id": "apply",
            "env": {**_GIT_IDENTITY, **remote},
            # The versions this apply registers (tags before and after) go to the verify job.
            "run": script(
                "git tag --list '*@v*' | sort > \"$RUNNER_TEMP/versions-before\"",
                "mllc apply --auto-approve",
                "git tag --list '*@v*' | sort > \"$RUNNER_TEMP/versions-after\"",
                'new="$(comm -13 "$RUNNER_TEMP/versions-before" "$RUNNER_TEMP/versions-after" '
                "| tr '\\n' ' ')\"",
                'echo "versions=${new% }" >> "$GITHUB_OUTPUT"',
            ),
        },
        {
            # New models and feedback batches live in the DVC cache: without a push the
            # next runner (and every clone) would miss what the commit pins.
            "name": "Push DVC data",
            "env": dict(REMOTE_CREDENTIALS),
            "run": script(
                'if [ -n "$(dvc remote list)" ]; then',
                "  dvc push",
                "else",
                '  echo "::warning::No DVC remote: models and data stay on this runner."',
                "fi",
            ),
        },
        {
            # The token is given to git through its environment (never argv, never
            # .git/config). A push made with the workflow's token starts no new run.
            "name": "Push the apply commit and tags",
            "env": {"GITHUB_TOKEN": "${{ github.token }}"},
            "run": script(
                *_push_script(f"git push origin HEAD:refs/heads/{branch}", "git push origin --tags")
            ),
        },
    ]
    return job


def _verify_steps(
    env: dict[str, str], arguments: str, *before: str, after: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Run ``mllc verify ARGUMENTS`` (after the script lines ``before``) with ``env``; its
    report goes to the log and the job summary (then the lines ``after``)."""
    return [
        *setup(history=True),  # the registry's tags and every version's commit
        {
            "name": "Verify",
            "env": dict(env),
            "run": script(
                "set +e",
                *before,
                f"mllc verify {arguments} > verify.txt",
                "code=$?",
                "set -e",
                "cat verify.txt",
                "{",
                "  echo '### mllc verify'",
                "  echo '```text'",
                "  cat verify.txt",
                "  echo '```'",
                '} >> "$GITHUB_STEP_SUMMARY"',
                *after,
                "# 0: every version rebuilt bit-identical and as recorded",
                'exit "$code"',
            ),
        },
    ]


def _verify_job(env: dict[str, str]) -> dict[str, Any]:
    """Rebuild what the apply job just registered, on a runner of its own: what a clone
    holds (Git and the DVC remote) is enough to reproduce each new version."""
    steps = _verify_steps(
        env,
        "$VERSIONS",
        "# one argument per version (NAME@vX.Y.Z), so unquoted:",
        "# shellcheck disable=SC2086",
        after=[
            "# each new version's model card, as apply committed it with the version",
            "for version in $VERSIONS; do",
            '  card="pipelines/${version%@*}/card.md"',
            '  git show "$version:$card" >> "$GITHUB_STEP_SUMMARY" || true',
            "done",
        ],
    )
    steps[-1]["env"]["VERSIONS"] = "${{ needs.apply.outputs.versions }}"
    return {
        "name": "mllc verify",
        "needs": "apply",
        "if": "needs.apply.outputs.versions != ''",
        "runs-on": RUNNER,
        "permissions": {"contents": "read"},
        "steps": steps,
    }


def _verify_all_job(env: dict[str, str]) -> dict[str, Any]:
    steps = _verify_steps(
        env,
        "--all",
        "if [ -z \"$(git tag --list '*@v*')\" ]; then",
        '  echo "No registered version yet: nothing to verify."',
        "  exit 0",
        "fi",
    )
    when = f"github.event.schedule == '{VERIFY_CRON}'"
    return {
        "name": "mllc verify (every version)",
        "if": f"github.event_name == 'workflow_dispatch' || {when}",
        "runs-on": RUNNER,
        "permissions": {"contents": "read"},
        "steps": steps,
    }


def _monitored(specs: Sequence[Lifecycle]) -> list[tuple[str, str, str]]:
    """(cron, lifecycle, environment) for every monitored lifecycle's environments."""
    out = []
    for spec in specs:
        if spec.monitoring is None:
            continue
        for env_name in spec.environments:
            out.append((spec.monitoring.schedule, spec.metadata.name, env_name))
    return sorted(out, key=lambda item: (item[1], item[2], item[0]))


def batch_variable(name: str, env_name: str) -> str:
    """The repository variable that names a scheduled check's batch (a path or URL)."""
    return f"MLLC_BATCH_{name}_{env_name}".upper().replace("-", "_")


def _push_script(*lines: str) -> list[str]:
    """The token reaches git through its environment only (never argv or .git/config)."""
    return [
        "auth=$(printf 'x-access-token:%s' \"$GITHUB_TOKEN\" | base64 -w0)",
        "export GIT_CONFIG_COUNT=1",
        'export GIT_CONFIG_KEY_0="http.${GITHUB_SERVER_URL}/.extraheader"',
        'export GIT_CONFIG_VALUE_0="AUTHORIZATION: basic ${auth}"',
        *lines,
    ]


_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": BOT_NAME,
    "GIT_AUTHOR_EMAIL": BOT_EMAIL,
    "GIT_COMMITTER_NAME": BOT_NAME,
    "GIT_COMMITTER_EMAIL": BOT_EMAIL,
}


def _monitor_steps(cron: str, name: str, env_name: str, branch: str) -> list[dict[str, Any]]:
    step_id = f"monitor-{name}-{env_name}"
    folder = Layout(name).monitoring_dir(env_name).as_posix()
    variable = batch_variable(name, env_name)
    # Each cron runs only its own lifecycles; a manual run checks them all.
    when = f"github.event_name == 'workflow_dispatch' || github.event.schedule == '{cron}'"
    check = {
        "name": f"Monitor {name} in {env_name}",
        "id": step_id,
        "if": when,
        "env": {"BATCH": f"${{{{ vars.{variable} }}}}", **REMOTE_CREDENTIALS},
        "run": script(
            'if [ -z "$BATCH" ]; then',
            f'  echo "::notice::{name}/{env_name}: no batch to check: set the repository '
            f'variable {variable} to its path or URL."',
            "  exit 0",
            "fi",
            "set +e",
            f'mllc monitor {name} --env {env_name} --data "$BATCH"',
            "code=$?",
            "set -e",
            f"if [ -f {folder}/report.md ]; then",
            f'  cat {folder}/report.md >> "$GITHUB_STEP_SUMMARY"',
            "fi",
            "# 0: no breach, 2: breach (a pull request follows); anything else fails the job",
            'if [ "$code" = 2 ]; then echo "breach=true" >> "$GITHUB_OUTPUT"; '
            'elif [ "$code" != 0 ]; then exit "$code"; fi',
        ),
    }
    pull_request = {
        "name": f"Open a pull request for the {name}/{env_name} breach",
        "if": f"steps.{step_id}.outputs.breach == 'true'",
        "env": {
            **_GIT_IDENTITY,
            "GITHUB_TOKEN": "${{ github.token }}",
            # A pull request opened with the workflow's own token starts no workflow
            # run (GitHub's rule): a token in MLLC_PR_TOKEN lets its plan job run.
            "GH_TOKEN": "${{ secrets.MLLC_PR_TOKEN || github.token }}",
            **REMOTE_CREDENTIALS,
        },
        "run": script(
            *_push_script(
                f'branch="mllc/monitor-{name}-{env_name}-$(date -u +%Y%m%d-%H%M%S)"',
                'git switch -c "$branch" "$GITHUB_SHA"',
                f"git add {folder}/report.json {folder}/report.md {folder}/report.html",
                "# the labelled batch rides in the pull request, as a DVC pointer when there",
                "# is a remote (apply moves it into the training data)",
                f"if [ -f {folder}/batch.parquet ]; then",
                '  if [ -n "$(dvc remote list)" ]; then',
                f"    dvc add {folder}/batch.parquet",
                f"    dvc push {folder}/batch.parquet.dvc",
                f"    git add {folder}/batch.parquet.dvc {folder}/.gitignore",
                "  else",
                f"    git add -f {folder}/batch.parquet",
                "  fi",
                "fi",
                f'git commit -m "mllc monitor: {name}/{env_name} breach"',
                'git push origin "HEAD:refs/heads/$branch"',
                "mllc plan --format markdown > plan.md || true",
                f"cat {folder}/report.md plan.md > body.md",
                f'gh pr create --base {branch} --head "$branch" '
                f'--title "mllc monitor: {name}/{env_name} breach" --body-file body.md',
            )
        ),
    }
    return [check, pull_request]


def _monitor_job(monitored: list[tuple[str, str, str]], branch: str) -> dict[str, Any]:
    steps = setup(history=True)  # the registry's tags: which version each env runs
    steps.append(with_env(dvc_pull(), REMOTE_CREDENTIALS))
    for cron, name, env_name in monitored:
        steps += _monitor_steps(cron, name, env_name, branch)
    scheduled = "github.event_name == 'schedule'"
    if VERIFY_CRON not in {cron for cron, _, _ in monitored}:  # that cron is verify's alone
        scheduled = f"({scheduled} && github.event.schedule != '{VERIFY_CRON}')"
    return {
        "name": "mllc monitor",
        "if": f"{scheduled} || github.event_name == 'workflow_dispatch'",
        "runs-on": RUNNER,
        "permissions": {"contents": "write", "pull-requests": "write"},
        "concurrency": {"group": "mllc-monitor", "cancel-in-progress": False},
        "steps": steps,
    }


_PERMISSION_NOTES = (
    ("pull-requests: write", "to comment on or open a pull request"),
    ("contents: write", "to push the apply commit and the registry tags"),
)


def crons(specs: Sequence[Lifecycle]) -> list[str]:
    """The specs' monitoring schedules and verify's, deduplicated and sorted."""
    monitoring = {spec.monitoring.schedule for spec in specs if spec.monitoring is not None}
    return sorted(monitoring | {VERIFY_CRON})


def workflow_document(
    specs: Sequence[Lifecycle], sources: Sequence[str], *, branch: str = DEFAULT_BRANCH
) -> dict[str, Any]:
    """The workflow as data. ``sources`` are the specs' repo-relative paths: those outside
    ``specs/`` are added to the pull-request path filter."""
    paths = ["specs/**", "pipelines/**", "mllc.toml", WORKFLOW_PATH]
    paths += sorted({s for s in sources if not s.startswith("specs/")} - set(paths))
    on: dict[str, Any] = {
        "pull_request": {"paths": paths},
        "push": {"branches": [branch]},
    }
    on["schedule"] = [{"cron": cron} for cron in crons(specs)]
    on["workflow_dispatch"] = {}
    jobs: dict[str, Any] = {
        "plan": _plan_job(),
        "preview": preview_job(paths),
        "preview-comment": preview_comment_job(),
        "apply": _apply_job(specs, branch),
        VERIFY_JOB: _verify_job(_remote_env(specs)),
        "verify-all": _verify_all_job(_remote_env(specs)),
    }
    monitored = _monitored(specs)
    if monitored:
        jobs["monitor"] = _monitor_job(monitored, branch)
    return {"name": "mllc", "on": on, "permissions": {}, "jobs": jobs}


def render_workflow(
    specs: Sequence[Lifecycle], sources: Sequence[str], *, branch: str = DEFAULT_BRANCH
) -> str:
    """``.github/workflows/mllc.yml`` for these specs: deterministic text."""
    text = dump_yaml(
        workflow_document(specs, sources, branch=branch), sort_keys=False, dumper=WorkflowDumper
    )
    for line, why in _PERMISSION_NOTES:
        text = text.replace(f"      {line}\n", f"      {line} # {why}\n")
    for name, sha, tag in ACTIONS:  # the readable tag beside each pinned commit
        text = text.replace(f"uses: {name}@{sha}\n", f"uses: {name}@{sha} # {tag}\n")
    return HEADER.format(source="specs/") + text
