"""The pull request's preview in the CI workflow: two jobs, split by what they may touch.

- ``preview`` runs ``mllc preview``, that is the pull request's own training code, so it
  holds a read-only token (``contents: read``), no secrets and no persisted credentials.
  It decides from ``mllc plan --json`` whether anything retrains or re-evaluates; only
  then does it restore the DVC cache (objects and DVC's run cache, so the stages of a
  commit already previewed are not run again) and pull the data. ``mllc preview`` itself
  always runs: when nothing retrains it says so at once, and its exit code is the
  verdict (1: a retrained model fails a gate, or an error). The Markdown (and the JSON)
  go to the job summary and to an artifact.
- ``preview-comment`` needs the first job and reads nothing but its artifact: no
  checkout, no mllc, no script of the pull request. With ``pull-requests: write`` only,
  it puts the Markdown, checked as data (a regular file, size-capped, starting with the
  preview's marker and heading), into ONE comment found by :data:`PREVIEW_MARKER`,
  edited in place on every push; it creates that comment only when something retrains.

This is GitHub's split for untrusted code inside one ``pull_request`` workflow (no
``pull_request_target``, nor a second workflow triggered by the first). On a pull
request from a fork the token is read-only in both jobs: the comment is skipped with a
warning and the preview stays in the job summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mllc import __version__
from mllc.compile.actions import (
    CACHE_RESTORE,
    CACHE_SAVE,
    COMMENT_LIMIT,
    DOWNLOAD_ARTIFACT,
    GITHUB_SCRIPT,
    RUNNER,
    UPLOAD_ARTIFACT,
    Block,
    script,
    setup,
    sticky_comment_js,
    uses,
)
from mllc.layout import DVC_CACHE

# The first line of the pull request's preview comment (mllc preview --format markdown):
# a second sticky comment, updated in place like the plan's.
PREVIEW_MARKER = "<!-- mllc-preview -->"
PREVIEW_HEADING = "### mllc preview"  # the line after the marker (mllc preview's contract)

# Seconds: a hostile spec (an enormous grid, a command that never ends) is stopped here,
# with mllc preview's message, well before the job's own limit.
PREVIEW_TIMEOUT = 1800
# The JSON comes from a second preview of the same commit, which runs no stage and only
# reads the first one's results; should the first have stopped at its timeout, this
# one gives up sooner.
JSON_TIMEOUT = 300
JOB_TIMEOUT_MINUTES = (PREVIEW_TIMEOUT + JSON_TIMEOUT) // 60 + 15  # + setup, pull, cache

ARTIFACT = "mllc-preview"  # the artifact's name, and its folder under $RUNNER_TEMP
ARTIFACT_DIR = "${{ runner.temp }}/" + ARTIFACT
# The comment job refuses a bigger file before reading it (4 bytes per character at most).
ARTIFACT_MAX_BYTES = 4 * COMMENT_LIMIT

# Reads the plan JSON (the versioned contract, schemas/plan.v1.json) named by argv[1] and
# prints retrains=true when a change retrains or re-evaluates. A plan that could not be
# made (invalid specs) counts as false: mllc preview reports the error itself.
RETRAINS_SCRIPT = """\
import json, sys
try:
    with open(sys.argv[1], encoding="utf-8") as f:
        changes = json.load(f)["changes"]
    retrains = any(
        c["category"] in ("retrain", "re-evaluate") and c["action"] != "no-op"
        for c in changes
    )
except (OSError, ValueError, KeyError, TypeError):
    retrains = False
print("retrains=" + ("true" if retrains else "false"))
"""


def cache_key_files(paths: Sequence[str]) -> list[str]:
    """What the DVC cache's key hashes: the pull request's path filter (specs, generated
    pipelines with their dvc.lock files, mllc.toml) and every DVC pointer, the workflow
    file aside (the mllc version is in the key itself)."""
    return [p for p in paths if not p.startswith(".github/")] + ["**/*.dvc"]


def _cache_steps(paths: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    # Keyed by the mllc version and the content of the specs and lock files: a second push
    # of the same commit (or a re-run) hits exactly; a new commit restores the newest
    # cache of this pull request (or of the base branch) and reruns only what changed.
    # Caches saved here are scoped to the pull request's ref: the default branch and
    # other pull requests never restore them.
    prefix = f"mllc-dvc-{__version__}-${{{{ runner.os }}}}-"
    # GitHub's expression strings double a quote: a path cannot end the string early
    files = ", ".join("'{}'".format(p.replace("'", "''")) for p in cache_key_files(paths))
    restore = {
        "name": "Restore the DVC cache and run cache",
        "id": "cache",
        "if": "steps.decide.outputs.retrains == 'true'",
        "uses": uses(CACHE_RESTORE),
        "with": {
            "path": DVC_CACHE.as_posix(),
            "key": prefix + f"${{{{ hashFiles({files}) }}}}",
            "restore-keys": prefix,
        },
    }
    # Saved before the verdict step, so a preview whose gate fails is reused too.
    save = {
        "name": "Save the DVC cache and run cache",
        "if": "steps.decide.outputs.retrains == 'true' && steps.cache.outputs.cache-hit != 'true'",
        "uses": uses(CACHE_SAVE),
        "with": {
            "path": DVC_CACHE.as_posix(),
            "key": "${{ steps.cache.outputs.cache-primary-key }}",
        },
    }
    return restore, save


def preview_job(paths: Sequence[str]) -> dict[str, Any]:
    """The job that runs the pull request's training: read-only, no secrets."""
    restore, save = _cache_steps(paths)
    return {
        "name": "mllc preview",
        "if": "github.event_name == 'pull_request'",
        "runs-on": RUNNER,
        "permissions": {"contents": "read"},
        "timeout-minutes": JOB_TIMEOUT_MINUTES,
        # A newer push supersedes the running preview.
        "concurrency": {
            "group": "mllc-preview-${{ github.event.pull_request.number }}",
            "cancel-in-progress": True,
        },
        # read by the comment job: a first comment only when something retrains
        "outputs": {"retrains": "${{ steps.decide.outputs.retrains }}"},
        "steps": [
            *setup(history=True),  # the registry's tags: which version each env runs
            {
                "name": "Does the plan retrain or re-evaluate?",
                "id": "decide",
                "run": script(
                    'mllc plan --json > "$RUNNER_TEMP/plan.json" || true',
                    'python - "$RUNNER_TEMP/plan.json" >> "$GITHUB_OUTPUT" <<\'EOF\'',
                    *RETRAINS_SCRIPT.splitlines(),
                    "EOF",
                ),
            },
            restore,
            {
                # No secrets here, so only a remote readable without credentials (or data
                # in Git) can be pulled; the stages that miss data then fail in the preview.
                "name": "Pull DVC data",
                "if": "steps.decide.outputs.retrains == 'true'",
                "run": script(
                    'if [ -n "$(dvc remote list)" ]; then',
                    '  dvc pull || echo "::warning::dvc pull failed (this job holds no '
                    'credentials): stages that need missing data will fail."',
                    "else",
                    '  echo "No DVC remote configured: nothing to pull."',
                    "fi",
                ),
            },
            {
                "name": "Preview",
                "id": "preview",
                "env": {"MARKER": PREVIEW_MARKER},
                "run": script(
                    f'out="$RUNNER_TEMP/{ARTIFACT}"',
                    'mkdir -p "$out"',
                    "set +e",
                    "mllc preview --format markdown --detailed-exitcode "
                    f'--timeout {PREVIEW_TIMEOUT} > "$out/preview.md"',
                    "code=$?",
                    "set -e",
                    'if [ ! -s "$out/preview.md" ]; then',
                    f"  printf '%s\\n{PREVIEW_HEADING}\\n\\n**mllc preview failed** (exit %s): "
                    'see the job log.\\n\' "$MARKER" "$code" > "$out/preview.md"',
                    "  code=1",
                    "fi",
                    "# the same commit again: no stage runs, the results are read",
                    f"mllc preview --format json --timeout {JSON_TIMEOUT} "
                    '> "$out/preview.json" || true',
                    'cat "$out/preview.md" >> "$GITHUB_STEP_SUMMARY"',
                    'echo "exitcode=$code" >> "$GITHUB_OUTPUT"',
                    "# 0: gates pass, 2: a new version would be registered; 1 fails the job",
                ),
            },
            save,
            {
                "name": "Upload the preview",
                "uses": uses(UPLOAD_ARTIFACT),
                "with": {
                    "name": ARTIFACT,
                    "path": ARTIFACT_DIR,
                    "if-no-files-found": "error",
                    "retention-days": 7,
                    "overwrite": True,  # a re-run replaces it
                },
            },
            {
                "name": "Fail when a retrained model fails a gate",
                "if": "steps.preview.outputs.exitcode != '0' "
                "&& steps.preview.outputs.exitcode != '2'",
                "env": {"PREVIEW_EXIT": "${{ steps.preview.outputs.exitcode }}"},
                "run": script(
                    'echo "::error::mllc preview exited $PREVIEW_EXIT: a retrained model fails '
                    'a gate, or the preview failed (see the preview above)."',
                    "exit 1",
                ),
            },
        ],
    }


# The artifact comes from the job that ran the pull request's code: it is data. It becomes
# the comment's body and nothing else, only when it is a regular file of bounded size
# that starts like a preview; else a fixed note replaces it. Finds the bot's own comment
# by the marker and edits it; creates one only when something retrains.
_COMMENT_SCRIPT = f"""\
const fs = require('fs');
const marker = process.env.MARKER;
const heading = marker + '\\n' + process.env.HEADING + '\\n';
const file = process.env.PREVIEW_FILE;
const stat = fs.lstatSync(file, {{ throwIfNoEntry: false }});
let body;
if (!stat || !stat.isFile() || stat.size > {ARTIFACT_MAX_BYTES}) {{
  body = heading + '\\n_The preview is missing or too large: see the preview job._\\n';
}} else {{
  body = fs.readFileSync(file, 'utf8');
  if (!body.startsWith(heading)) {{
    body = heading + '\\n_The preview is not in the expected form: see the preview job._\\n';
  }}
}}
if (body.length > {COMMENT_LIMIT}) {{
  body = body.slice(0, {COMMENT_LIMIT}) + '\\n\\n_Preview truncated: see the job summary._\\n';
}}
""" + sticky_comment_js(
    "c.body.startsWith(marker)",
    """if (process.env.RETRAINS === 'true') {
    await github.rest.issues.createComment({ owner, repo, issue_number, body });
  } else {
    core.info('Nothing retrains and no preview comment yet: none created.');
  }""",
)


def preview_comment_job() -> dict[str, Any]:
    """The job that writes the preview comment: it reads only the preview's artifact."""
    return {
        "name": "mllc preview comment",
        "needs": "preview",
        # Also after a failing preview (a gate fails: the comment says which); not when
        # the preview was skipped (no pull request) or superseded by a newer push.
        "if": "!cancelled() && (needs.preview.result == 'success' "
        "|| needs.preview.result == 'failure')",
        "runs-on": RUNNER,
        "permissions": {"pull-requests": "write"},
        "concurrency": {
            "group": "mllc-preview-comment-${{ github.event.pull_request.number }}",
            "cancel-in-progress": False,
        },
        "steps": [
            {
                "name": "Download the preview",
                "uses": uses(DOWNLOAD_ARTIFACT),
                # a preview job that failed before its upload: the script says so
                "continue-on-error": True,
                "with": {"name": ARTIFACT, "path": ARTIFACT_DIR},
            },
            {
                "name": "Comment the preview on the pull request",
                "uses": uses(GITHUB_SCRIPT),
                "env": {
                    "MARKER": PREVIEW_MARKER,
                    "HEADING": PREVIEW_HEADING,
                    "PREVIEW_FILE": ARTIFACT_DIR + "/preview.md",
                    "RETRAINS": "${{ needs.preview.outputs.retrains }}",
                },
                "with": {"script": Block(_COMMENT_SCRIPT)},
            },
        ],
    }
