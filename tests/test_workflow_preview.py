"""The preview jobs' scripts, run for real (mllc.compile.preview_jobs).

The scripts are taken from the rendered workflow, not copied: the decide step runs with
bash and the real ``mllc plan`` on real repositories; the preview step's fallback runs
where there is nothing to preview; the comment script runs in Node the way
actions/github-script runs it (an async function of ``require, github, context, core``),
its ``github`` client speaking HTTP to a small GitHub-like API on 127.0.0.1 (GitHub
itself cannot be reached from the tests).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers_repo import applied_repo, copy_repo, edit_spec, env, set_gate, set_param, spec_path

from mllc.compile.actions import BOT_NAME, COMMENT_LIMIT
from mllc.compile.preview_jobs import (
    ARTIFACT_MAX_BYTES,
    PREVIEW_HEADING,
    RETRAINS_SCRIPT,
    preview_comment_job,
    preview_job,
)
from mllc.compile.workflow import PREVIEW_MARKER, render_workflow
from mllc.spec.models import Lifecycle

BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]  # GitHub's `run:` shell
HEAD = f"{PREVIEW_MARKER}\n{PREVIEW_HEADING}\n"


def _run_step(step_id: str, cwd: Path, tmp: Path) -> dict[str, str]:
    """Run the preview job's step as the runner does; its outputs ($GITHUB_OUTPUT)."""
    step = next(s for s in preview_job(["specs/**"])["steps"] if s.get("id") == step_id)
    script = tmp / f"{step_id}.sh"
    script.write_text(step["run"], encoding="utf-8")
    output, summary, temp = tmp / "output", tmp / "summary", tmp / "runner-temp"
    temp.mkdir(exist_ok=True)
    output.write_text("", encoding="utf-8")
    environ = {
        **env(),
        **step.get("env", {}),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "RUNNER_TEMP": str(temp),
    }
    proc = subprocess.run(
        [*BASH, str(script)], cwd=cwd, env=environ, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = output.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines)


# ------------------------------------------------------------------ the decide step


def test_decide_step_reads_real_plans(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    repo = copy_repo(applied_repo(tmp_path_factory).repo, tmp_path / "repo")

    def retrains() -> str:
        return _run_step("decide", repo, tmp_path)["retrains"]

    def plan_categories() -> set[str]:
        plan = json.loads((tmp_path / "runner-temp" / "plan.json").read_text(encoding="utf-8"))
        return {c["category"] for c in plan["changes"] if c["action"] != "no-op"}

    assert retrains() == "false"  # applied, nothing changed
    assert plan_categories() == set()

    def describe(data: dict[str, Any]) -> None:
        data["metadata"]["description"] = "Another description"

    edit_spec(repo, describe, commit=None)  # the plan changes something, retrains nothing
    assert retrains() == "false"
    assert plan_categories() == {"metadata"}

    edit_spec(repo, set_gate("accuracy >= 0.9", "accuracy >= 0.8"), commit=None)
    assert retrains() == "true"
    assert "re-evaluate" in plan_categories()

    edit_spec(repo, set_gate("accuracy >= 0.8", "accuracy >= 0.9"), commit=None)
    edit_spec(repo, set_param("forest", "n_estimators", 11), commit=None)
    assert retrains() == "true"
    assert "retrain" in plan_categories()

    spec_path(repo).write_text("kind: [unclosed\n", encoding="utf-8")
    assert retrains() == "false"  # no plan: the step still succeeds, preview reports


@pytest.mark.parametrize("text", ["", "{}", "[1]", '{"changes": [{}]}', '{"changes": 1}'])
def test_retrains_script_on_unreadable_plans(tmp_path: Path, text: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", RETRAINS_SCRIPT, str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "retrains=false\n"


# ------------------------------------------------------------------ the preview step


def test_preview_step_always_leaves_a_preview_to_comment(tmp_path: Path) -> None:
    """Nothing to preview here (not a repository): the step itself succeeds, the Markdown
    still starts with the marker and heading, and the verdict is a failure."""
    work = tmp_path / "work"
    work.mkdir()
    outputs = _run_step("preview", work, tmp_path)
    assert outputs["exitcode"] == "1"
    markdown = (tmp_path / "runner-temp" / "mllc-preview" / "preview.md").read_text("utf-8")
    assert markdown.startswith(HEAD)
    assert (tmp_path / "summary").read_text(encoding="utf-8") == markdown
    assert (tmp_path / "runner-temp" / "mllc-preview" / "preview.json").exists()


# ------------------------------------------------------------------ the comment script


class _Api:
    """Issue comments of one pull request, as GitHub's REST API serves them."""

    def __init__(self) -> None:
        self.comments: list[dict[str, Any]] = []
        self.forbidden = False
        self.lock = threading.Lock()

    def add(self, login: str, body: str) -> None:
        self.comments.append({"id": len(self.comments) + 1, "user": {"login": login}, "body": body})


def _handler(api: _Api) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, data: Any) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _body(self) -> str:
            data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body: str = data["body"]
            return body

        def do_GET(self) -> None:
            if self.path.startswith("/repos/o/r/issues/7/comments"):
                with api.lock:
                    self._reply(200, api.comments)
            else:
                self._reply(404, {})

        def do_POST(self) -> None:
            if api.forbidden:
                self._reply(403, {"message": "Resource not accessible by integration"})
                return
            with api.lock:
                api.add(BOT_NAME, self._body())
            self._reply(201, api.comments[-1])

        def do_PATCH(self) -> None:
            comment_id = int(self.path.rsplit("/", 1)[1])
            with api.lock:
                comment = next(c for c in api.comments if c["id"] == comment_id)
                comment["body"] = self._body()
            self._reply(200, comment)

    return Handler


@pytest.fixture
def api() -> Iterator[tuple[_Api, str]]:
    state = _Api()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# What actions/github-script does with `script:` (an AsyncFunction of these arguments);
# `github` makes Octokit's three calls over HTTP to the test's API.
_HARNESS = """
const base = process.env.API;
async function request(method, path, body) {
  const res = await fetch(base + path, {
    method, body: body === undefined ? undefined : JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
  if (!res.ok) { const e = new Error('HTTP ' + res.status); e.status = res.status; throw e; }
  return { data: await res.json() };
}
const issue = (p) => `/repos/${p.owner}/${p.repo}/issues/${p.issue_number}/comments`;
const comment = (p) => `/repos/${p.owner}/${p.repo}/issues/comments/${p.comment_id}`;
const github = {
  paginate: async (fn, params) => (await fn(params)).data,
  rest: { issues: {
    listComments: (p) => request('GET', issue(p)),
    createComment: (p) => request('POST', issue(p), { body: p.body }),
    updateComment: (p) => request('PATCH', comment(p), { body: p.body }),
  } },
};
const context = { repo: { owner: 'o', repo: 'r' }, issue: { number: 7 } };
const core = {
  info: (m) => console.log('info: ' + m),
  warning: (m) => console.log('warning: ' + m),
};
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const script = require('fs').readFileSync(process.argv[2], 'utf8');
new AsyncFunction('require', 'github', 'context', 'core', script)(require, github, context, core)
  .catch((e) => { console.error(e); process.exit(1); });
"""


def _node() -> str:
    found = shutil.which("node")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("node is not installed")
    pytest.skip("node is not installed")


def _comment(base: str, tmp: Path, retrains: str, preview: str | bytes | Path | None) -> str:
    """Run the comment job's script on a downloaded preview (text, bytes, a symbolic link
    to a path, or none); its console output."""
    step = preview_comment_job()["steps"][1]
    (tmp / "script.js").write_text(step["with"]["script"], encoding="utf-8")
    (tmp / "harness.js").write_text(_HARNESS, encoding="utf-8")
    folder = tmp / "download"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    if isinstance(preview, str):
        (folder / "preview.md").write_text(preview, encoding="utf-8")
    elif isinstance(preview, bytes):
        (folder / "preview.md").write_bytes(preview)
    elif isinstance(preview, Path):
        os.symlink(preview, folder / "preview.md")
    environ = {
        **{k: v for k, v in os.environ.items() if "TOKEN" not in k},
        "MARKER": step["env"]["MARKER"],
        "HEADING": step["env"]["HEADING"],
        "PREVIEW_FILE": str(folder / "preview.md"),
        "RETRAINS": retrains,
        "API": base,
    }
    proc = subprocess.run(
        [_node(), str(tmp / "harness.js"), str(tmp / "script.js")],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_one_preview_comment_created_then_edited(api: tuple[_Api, str], tmp_path: Path) -> None:
    state, base = api
    state.add("someone", f"{HEAD}quoting the bot")  # not the bot's: never edited
    first = f"{HEAD}\n**iris**: f1_macro 0.95 (+0.01)\n"
    _comment(base, tmp_path, "true", first)
    second = f"{HEAD}\n**iris**: f1_macro 0.93 (-0.01)\n"
    _comment(base, tmp_path, "true", second)
    _comment(base, tmp_path, "true", second)
    assert [(c["user"]["login"], c["body"]) for c in state.comments] == [
        ("someone", f"{HEAD}quoting the bot"),
        (BOT_NAME, second),
    ]


def test_no_comment_created_when_nothing_retrains(api: tuple[_Api, str], tmp_path: Path) -> None:
    state, base = api
    nothing = f"{HEAD}\nNothing retrains or re-evaluates.\n"
    out = _comment(base, tmp_path, "false", nothing)
    assert state.comments == [] and "none created" in out
    # an earlier push's preview is brought up to date, not left stale
    _comment(base, tmp_path, "true", f"{HEAD}\nold numbers\n")
    _comment(base, tmp_path, "false", nothing)
    assert [c["body"] for c in state.comments] == [nothing]


@pytest.mark.parametrize(
    "preview",
    [
        "@everyone [click](https://evil.example) <img src=x>\n",  # not a preview
        f"{HEAD}".replace("\n", "\r\n") + "x\n",  # not the heading line
        None,  # no artifact (the preview job failed before its upload)
        b"x" * (ARTIFACT_MAX_BYTES + 1),  # too big to read
    ],
    ids=["foreign", "heading", "missing", "too-big"],
)
def test_untrusted_artifact_is_replaced_by_a_note(
    api: tuple[_Api, str], tmp_path: Path, preview: str | bytes | None
) -> None:
    state, base = api
    _comment(base, tmp_path, "true", preview)
    (comment,) = state.comments
    assert comment["body"].startswith(HEAD)
    assert "see the preview job" in comment["body"]
    assert "evil" not in comment["body"] and "xxx" not in comment["body"]


def test_symlinked_artifact_is_not_followed(api: tuple[_Api, str], tmp_path: Path) -> None:
    state, base = api
    outside = tmp_path / "outside.md"
    outside.write_text(f"{HEAD}a file outside the artifact\n", encoding="utf-8")
    _comment(base, tmp_path, "true", outside)
    (comment,) = state.comments
    assert comment["body"].startswith(HEAD) and "outside" not in comment["body"]


def test_long_preview_is_cut_to_the_comment_limit(api: tuple[_Api, str], tmp_path: Path) -> None:
    state, base = api
    _comment(base, tmp_path, "true", HEAD + "é" * COMMENT_LIMIT)
    (comment,) = state.comments
    body = comment["body"]
    assert body.startswith(HEAD) and body.endswith("_Preview truncated: see the job summary._\n")
    assert len(body) < 65_536


def test_read_only_token_warns_instead_of_failing(api: tuple[_Api, str], tmp_path: Path) -> None:
    state, base = api
    state.forbidden = True  # a fork's pull request
    out = _comment(base, tmp_path, "true", f"{HEAD}\nnumbers\n")
    assert state.comments == [] and "warning: Cannot comment" in out


def test_rendered_jobs_are_the_ones_tested(valid_spec: dict[str, Any]) -> None:
    spec = Lifecycle.model_validate(valid_spec, strict=False)
    jobs = yaml.safe_load(render_workflow([spec], ["specs/iris.yaml"]))["jobs"]
    assert jobs["preview-comment"] == preview_comment_job()
    assert (
        jobs["preview"]["steps"] == preview_job(["specs/**", "pipelines/**", "mllc.toml"])["steps"]
    )
