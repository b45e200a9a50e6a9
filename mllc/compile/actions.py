"""Building blocks of the generated CI workflow (:mod:`mllc.compile.workflow`): the pinned
actions, the runner, and the steps several jobs share.

Every action is pinned by commit SHA, with its release tag beside it for people
(``render_workflow`` writes the tag as a comment): a tag can be moved, a commit cannot.
"""

from __future__ import annotations

from typing import Any

import yaml

from mllc import __version__
from mllc.compile import _Dumper

# (action, commit, tag): bump all three together.
CHECKOUT = ("actions/checkout", "11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2")
SETUP_PYTHON = ("actions/setup-python", "a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0")
GITHUB_SCRIPT = ("actions/github-script", "60a0d83039c74a4aee543508d2ffcb1c3799cdea", "v7.0.1")
# actions/cache's restore and save halves: the save runs even when a gate then fails.
CACHE_RESTORE = ("actions/cache/restore", "0400d5f644dc74513175e3cd8d07132dd4860809", "v4.2.4")
CACHE_SAVE = ("actions/cache/save", "0400d5f644dc74513175e3cd8d07132dd4860809", "v4.2.4")
UPLOAD_ARTIFACT = ("actions/upload-artifact", "ea165f8d65b6e75b540449e92b4886f43607fa02", "v4.6.2")
DOWNLOAD_ARTIFACT = (
    "actions/download-artifact",
    "d3f86a106a0bac45b974a628896c90dbdf5c8093",
    "v4.3.0",
)
ACTIONS = (
    CHECKOUT,
    SETUP_PYTHON,
    GITHUB_SCRIPT,
    CACHE_RESTORE,
    CACHE_SAVE,
    UPLOAD_ARTIFACT,
    DOWNLOAD_ARTIFACT,
)

PYTHON_VERSION = "3.11"
RUNNER = "ubuntu-latest"
BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
COMMENT_LIMIT = 60_000  # GitHub refuses comment bodies over 65,536 characters


class Block(str):
    """A multi-line script, dumped as a YAML literal block (``|``)."""


class WorkflowDumper(_Dumper):
    pass


def _block(dumper: yaml.SafeDumper, value: Block) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="|")


WorkflowDumper.add_representer(Block, _block)


def uses(action: tuple[str, str, str]) -> str:
    name, sha, _ = action
    return f"{name}@{sha}"


def script(*lines: str) -> Block:
    return Block("".join(line.rstrip() + "\n" for line in lines))


def checkout(*, history: bool = False) -> dict[str, Any]:
    # Never persisted: apply and preview run DVC stages (users' own commands), which must
    # not find a token in .git/config; the push step gets the token for itself alone.
    with_: dict[str, Any] = {"persist-credentials": False}
    if history:
        with_["fetch-depth"] = 0  # all commits and tags: the registry lives in Git tags
    return {"name": "Check out", "uses": uses(CHECKOUT), "with": with_}


def setup(*, history: bool = False) -> list[dict[str, Any]]:
    """Check out, set up Python, install the mllc that compiled the workflow."""
    return [
        checkout(history=history),
        {
            "name": "Set up Python",
            "uses": uses(SETUP_PYTHON),
            "with": {"python-version": PYTHON_VERSION},
        },
        {"name": "Install mllc", "run": f"python -m pip install 'mllc=={__version__}'"},
    ]


def dvc_pull() -> dict[str, Any]:
    # A repo without a DVC remote (data bundled or in Git) is fine; a failing pull is not.
    return {
        "name": "Pull DVC data",
        "run": script(
            'if [ -n "$(dvc remote list)" ]; then',
            "  dvc pull",
            "else",
            '  echo "No DVC remote configured: nothing to pull."',
            "fi",
        ),
    }


def sticky_comment_js(found: str, otherwise: str) -> str:
    """The end of a github-script that keeps ONE comment per pull request: among the bot's
    own comments, the first whose body passes ``found`` (a JS expression of ``c.body`` and
    ``marker``) is edited to ``body``; else ``otherwise`` runs (JS statements). A fork's
    read-only token cannot comment: a warning, not a failure (the job summary has it)."""
    return f"""\
const {{ owner, repo }} = context.repo;
const issue_number = context.issue.number;
try {{
  const comments = await github.paginate(github.rest.issues.listComments, {{
    owner, repo, issue_number, per_page: 100,
  }});
  const mine = comments.find(
    (c) => c.user && c.user.login === '{BOT_NAME}' && c.body && {found},
  );
  if (mine) {{
    await github.rest.issues.updateComment({{ owner, repo, comment_id: mine.id, body }});
  }} else {otherwise}
}} catch (error) {{
  if (error.status === 403) {{
    core.warning('Cannot comment on this pull request (read-only token, e.g. from a fork).');
  }} else {{
    throw error;
  }}
}}
"""


# The DVC remote's and an s3 storage_uri's credentials (docs/remote.md), from repository
# secrets, for the steps that read or write them; the preview job never gets them. When
# the secrets are not set the values are empty, which AWS's libraries ignore (a role or
# another remote type then applies).
REMOTE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "${{ secrets.AWS_ACCESS_KEY_ID }}",
    "AWS_SECRET_ACCESS_KEY": "${{ secrets.AWS_SECRET_ACCESS_KEY }}",
}


def with_env(step: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    return {**step, "env": {**step.get("env", {}), **env}}
