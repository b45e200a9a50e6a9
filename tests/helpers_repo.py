"""Shared helpers for the functional plan/apply tests: temp repos, the real CLI, repo checks.

Everything runs for real: ``git``, ``dvc`` and ``python -m mllc`` as subprocesses, with
this interpreter's scripts folder first on PATH (DVC runs the generated
``mllc stage ...`` commands) and ``NO_COLOR=1``.

Expensive repositories are built once per test session and cached here (not in a
fixture: the two test modules share them); tests that mutate a repository work on a
copy (:func:`copy_repo`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NAME = "iris"
PIPE = f"pipelines/{NAME}"
DVC_LOCK = f"{PIPE}/dvc.lock"
MODEL = f"{PIPE}/model.joblib"
GENERATED = (f"{PIPE}/dvc.yaml", f"{PIPE}/params.yaml", f"{PIPE}/lifecycle.yaml")
STAGES = ("prepare", "split", "train@logreg", "train@forest", "evaluate", "select")
TIMEOUT = 300  # seconds for any one command: a hang fails the test instead of the suite

IDENTITY = {
    "GIT_AUTHOR_NAME": "mllc tests",
    "GIT_AUTHOR_EMAIL": "tests@mllc.invalid",
    "GIT_COMMITTER_NAME": "mllc tests",
    "GIT_COMMITTER_EMAIL": "tests@mllc.invalid",
}


# --------------------------------------------------------------------------- commands


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["PATH"] = str(BIN) + os.pathsep + out.get("PATH", "")
    out["NO_COLOR"] = "1"
    out.update(IDENTITY)  # module-scoped fixtures run outside conftest's monkeypatch
    return out


def run(
    args: list[str],
    cwd: Path,
    check: bool = True,
    stdin: int | None = subprocess.DEVNULL,
    timeout: float = TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        args,
        cwd=cwd,
        env=env(),
        stdin=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} (in {cwd}) exited {proc.returncode}:\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


def mllc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "mllc", *args], cwd, check)


def dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "dvc", *args], cwd, check)


def git(*args: str, cwd: Path, check: bool = True) -> str:
    return run(["git", *args], cwd, check).stdout.strip()


def mllc_popen(
    *args: str, cwd: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start ``python -m mllc ARGS`` (same session as the test: killing it kills only it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "mllc", *args],
        cwd=cwd,
        env={**env(), **(extra_env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=False,
    )


# ------------------------------------------------------------------------------ specs


def fast_spec() -> dict[str, Any]:
    """specs/iris.yaml with small models (a full ``dvc repro`` takes seconds, not minutes)
    and no environments (deployments are not what these tests are about)."""
    data = yaml.safe_load((ROOT / "specs" / "iris.yaml").read_text(encoding="utf-8"))
    data.pop("environments", None)
    forest = data["models"]["forest"]
    forest.pop("search", None)
    forest["params"] = {"n_estimators": 10, "random_state": 0}
    return data


def dump_spec(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def spec_path(repo: Path) -> Path:
    return repo / "specs" / f"{NAME}.yaml"


def read_spec(repo: Path) -> dict[str, Any]:
    data = yaml.safe_load(spec_path(repo).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def edit_spec(repo: Path, change: Callable[[dict[str, Any]], None], commit: str | None) -> None:
    """Change the spec's data; with ``commit``, commit the edit with that message."""
    data = read_spec(repo)
    change(data)
    spec_path(repo).write_text(dump_spec(data), encoding="utf-8")
    if commit:
        git("commit", "-qm", commit, "--", f"specs/{NAME}.yaml", cwd=repo)


def set_gate(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        gates = data["gates"]
        assert old in gates, f"gate {old!r} not in {gates}"
        gates[gates.index(old)] = new

    return change


def set_param(candidate: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["models"][candidate]["params"][key] = value

    return change


# ------------------------------------------------------------------------ repositories


def make_fresh_repo(path: Path, spec_text: str | None = None) -> Path:
    """git init, .gitignore with /.mllc/, dvc init, the fast spec, one commit."""
    path.mkdir(parents=True)
    git("init", "-q", cwd=path)
    (path / ".gitignore").write_text("/.mllc/\n", encoding="utf-8")
    dvc("init", "-q", cwd=path)
    (path / "specs").mkdir()
    spec_path(path).write_text(spec_text or dump_spec(fast_spec()), encoding="utf-8")
    git("add", "-A", cwd=path)
    git("commit", "-qm", "lifecycle specs", cwd=path)
    return path


def copy_repo(src: Path, dst: Path) -> Path:
    """A full copy: Git history and tags, DVC cache, outputs and .mllc state."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


_SESSION: dict[str, Any] = {}


def _session_dir(factory: pytest.TempPathFactory) -> Path:
    if "dir" not in _SESSION:
        _SESSION["dir"] = factory.mktemp("apply-repos")
    path: Path = _SESSION["dir"]
    return path


def fresh_repo(factory: pytest.TempPathFactory) -> Path:
    """A never-applied repository (read-only: copy it before changing anything)."""
    if "fresh" not in _SESSION:
        _SESSION["fresh"] = make_fresh_repo(_session_dir(factory) / "fresh")
    path: Path = _SESSION["fresh"]
    return path


class Applied:
    """The reference: a copy of the fresh repo after one uninterrupted ``mllc apply``."""

    def __init__(self, repo: Path, proc: subprocess.CompletedProcess[str], seconds: float):
        self.repo = repo
        self.proc = proc
        self.seconds = seconds
        self.head = git("rev-parse", "HEAD", cwd=repo)
        self.tree = git("rev-parse", "HEAD^{tree}", cwd=repo)
        self.commits = int(git("rev-list", "--count", "HEAD", cwd=repo))
        self.model_md5 = lock_model_md5(repo)
        self.files = {p: (repo / p).read_text(encoding="utf-8") for p in GENERATED}


def applied_repo(factory: pytest.TempPathFactory) -> Applied:
    """The fresh repo applied once (read-only: copy it before changing anything)."""
    if "applied" not in _SESSION:
        repo = copy_repo(fresh_repo(factory), _session_dir(factory) / "applied")
        started = time.monotonic()
        proc = mllc("apply", "--auto-approve", cwd=repo, check=False)
        seconds = time.monotonic() - started
        assert proc.returncode == 0, f"first apply failed:\n{proc.stdout}\n{proc.stderr}"
        _SESSION["applied"] = Applied(repo, proc, seconds)
    applied: Applied = _SESSION["applied"]
    return applied


# ----------------------------------------------------------------------- observations


def md5_file(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def read_lock_file(repo: Path) -> dict[str, Any] | None:
    path = repo / DVC_LOCK
    if not path.exists():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{DVC_LOCK} is not a YAML mapping: {data!r}"
    return data


def lock_stages(repo: Path) -> set[str]:
    return set(((read_lock_file(repo) or {}).get("stages") or {}).keys())


def lock_model_md5(repo: Path) -> str | None:
    select = ((read_lock_file(repo) or {}).get("stages") or {}).get("select") or {}
    for out in select.get("outs") or []:
        if out.get("path") == MODEL:
            md5 = out.get("md5")
            return md5 if isinstance(md5, str) else None
    return None


def tags(repo: Path) -> set[str]:
    return set(git("tag", "--list", cwd=repo).split())


def tag_message(repo: Path, tag: str) -> str:
    return git("for-each-ref", "--format=%(contents)", f"refs/tags/{tag}", cwd=repo)


def tag_payload(repo: Path, tag: str) -> dict[str, Any]:
    """The JSON document after GTO's first line and a blank line."""
    message = tag_message(repo, tag)
    first, _, rest = message.partition("\n\n")
    assert first.startswith(f"Registering artifact {NAME} version "), message[:200]
    payload = json.loads(rest)
    assert isinstance(payload, dict)
    return payload


def assert_registered(repo: Path, version: str, at: str, md5: str) -> None:
    """``<name>@<version>`` is an annotated tag on ``at`` carrying ``md5`` in GTO's format."""
    tag = f"{NAME}@{version}"
    assert tag in tags(repo), f"{tag} missing; tags: {sorted(tags(repo))}"
    assert git("cat-file", "-t", f"refs/tags/{tag}", cwd=repo) == "tag", f"{tag} is lightweight"
    assert git("rev-parse", f"{tag}^{{commit}}", cwd=repo) == at
    message = tag_message(repo, tag)
    assert message.startswith(f"Registering artifact {NAME} version {version}"), message[:200]
    assert tag_payload(repo, tag)["model_md5"] == md5


def status_porcelain(repo: Path) -> str:
    return git("status", "--porcelain", cwd=repo)


def head(repo: Path) -> str:
    return git("rev-parse", "HEAD", cwd=repo)


_RAN = re.compile(r"(?:Running stage|Stage) '[^']*:([^']+)'(?::|\s+is cached)")


def executed_stages(output: str) -> set[str]:
    """Stages DVC ran or restored from its run cache (``didn't change`` ones are not)."""
    return {m.group(1) for m in _RAN.finditer(output)}


def running_stages(output: str) -> list[str]:
    return re.findall(r"Running stage '[^']*:([^']+)':", output)


def journal_entries(repo: Path) -> list[dict[str, Any]]:
    path = repo / ".mllc" / "journal.jsonl"
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a torn tail after a kill
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def runs_of(entries: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Journal entries grouped by apply id, in file order."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        runs.setdefault(str(entry.get("apply")), []).append(entry)
    return runs


def plan_json(repo: Path, *args: str) -> dict[str, Any]:
    proc = mllc("plan", "--json", *args, cwd=repo)
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


def addresses(plan: dict[str, Any], kind: str | None = None) -> list[str]:
    return [
        c["address"]
        for c in plan["changes"]
        if c["action"] != "no-op" and (kind is None or c["kind"] == kind)
    ]


def lock_id_from(message: str) -> str:
    match = re.search(r"mllc force-unlock (\S+?)'", message)
    assert match, f"no 'mllc force-unlock ID' in: {message}"
    return match.group(1)


# --------------------------------------------------------------------------- processes


def processes_in(repo: Path) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose working directory is in ``repo``."""
    root = repo.resolve()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(f"/proc/{entry}/cwd"))
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state in ("Z", "X"):
            continue
        if cwd == root or root in cwd.parents:
            found.append((int(entry), raw.replace(b"\0", b" ").decode(errors="replace").strip()))
    return found


def wait_until_gone(repo: Path, timeout: float = 90.0) -> None:
    """Wait for every process working in ``repo`` to exit (orphans of a killed apply)."""
    deadline = time.monotonic() + timeout
    while processes_in(repo):
        if time.monotonic() > deadline:
            raise AssertionError(f"processes still running in {repo}: {processes_in(repo)}")
        time.sleep(0.05)
