"""mllc.observe.pipeline against real ``dvc status``: the same stale stages, every time.

Differential: one small pipeline laid out like ours (``pipelines/p/dvc.yaml``,
``wdir: ../..``, nested params, a ``foreach``, cached and ``cache: false`` outs,
a directory dep and a directory out) is built once with real git and ``dvc
repro``; each scenario copies it, changes one thing, and compares the set of
stale stages from ``pipeline_status`` with the one from ``dvc status --json``.
Nothing is stubbed. Unit tests cover foreach expansion, the params leaf diff,
the YAML 1.2 reading and the hash cache without DVC.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mllc.hashing import MD5_DOS2UNIX, Hasher, file_md5, tree_md5
from mllc.observe.dvcyaml import expand_stages
from mllc.observe.pipeline import diff_params, pipeline_status, read_lock
from mllc.observe.types import Reason, StageState
from mllc.yaml12 import load_yaml

DVC_YAML = "pipelines/p/dvc.yaml"
PARAMS = "pipelines/p/params.yaml"
LOCK = "pipelines/p/dvc.lock"
P = "pipelines/p"


# -- running git and dvc -----------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # dvc runs stage commands through the shell: our interpreter's scripts first.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(
        GIT_AUTHOR_NAME="mllc tests",
        GIT_AUTHOR_EMAIL="tests@mllc.invalid",
        GIT_COMMITTER_NAME="mllc tests",
        GIT_COMMITTER_EMAIL="tests@mllc.invalid",
        DVC_NO_ANALYTICS="1",
    )
    return env


def run(*args: str, cwd: Path) -> str:
    proc = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def dvc(*args: str, cwd: Path) -> str:
    return run(sys.executable, "-m", "dvc", *args, cwd=cwd)


def _stage_names(status: dict[str, Any], dvc_yaml: str) -> set[str]:
    prefix = f"{dvc_yaml}:"
    assert all(k.startswith(prefix) for k in status), status
    return {k.removeprefix(prefix) for k in status}


def dvc_stale(repo: Path, dvc_yaml: str = DVC_YAML) -> set[str]:
    """Stale stages by ``dvc status --json <dvc.yaml>``, a new process."""
    out = dvc("status", "--json", dvc_yaml, cwd=repo).strip()
    return _stage_names(json.loads(out) if out else {}, dvc_yaml)


def dvc_stale_in_process(repo: Path, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The same answer from ``Repo.status``, the call ``dvc status`` makes
    (dvc/commands/status.py:53), without 0.3-1 s of interpreter start-up per scenario."""
    from dvc.repo import Repo

    monkeypatch.chdir(repo)  # DVC names stages relative to the working directory
    with Repo(str(repo)) as dvc_repo:
        return _stage_names(dvc_repo.status(targets=[DVC_YAML]), DVC_YAML)


def observe(repo: Path, dvc_yaml: str = DVC_YAML) -> dict[str, StageState]:
    """pipeline_status from what is on disk (the desired files are the written ones)."""
    folder = dvc_yaml.rsplit("/", 1)[0]
    doc = load_yaml((repo / dvc_yaml).read_text(encoding="utf-8"))
    params_path = repo / folder / "params.yaml"
    params = {}
    if params_path.exists():
        params[f"{folder}/params.yaml"] = load_yaml(params_path.read_text(encoding="utf-8"))
    lock = read_lock(repo / folder / "dvc.lock")
    states = pipeline_status(repo, dvc_yaml, doc, params, lock, Hasher(repo, None))
    return {s.name: s for s in states}


# -- the pipeline ----------------------------------------------------------------------

SHELL_PREPARE = (
    f"mkdir -p {P}/data/shards {P}/reports"
    f" && cp data/raw.csv {P}/data/clean.csv"
    f" && cp data/raw.csv {P}/data/shards/a.csv && echo b > {P}/data/shards/b.csv"
    f""" && echo '{{"rows": 3}}' > {P}/reports/data.json"""
)
SHELL_TRAIN = (
    f"mkdir -p {P}/candidates {P}/reports/train"
    f" && cat {P}/data/clean.csv data/images/a.txt > {P}/candidates/${{item}}.txt"
    f" && echo ${{item}} >> {P}/candidates/${{item}}.txt"
    f""" && echo '{{"acc": 1}}' > {P}/reports/train/${{item}}.json"""
)
SHELL_SELECT = (
    f"cat {P}/candidates/forest.txt {P}/candidates/logreg.txt > {P}/model.txt"
    f" && echo '{{}}' > {P}/lineage.json"
    f""" && echo '{{"acc": 1}}' > {P}/metrics.json"""
    f" && mkdir -p {P}/plots && printf 'actual,predicted\\n1,1\\n' > {P}/plots/confusion.csv"
)


def base_dvc_doc() -> dict[str, Any]:
    return {
        "stages": {
            "prepare": {
                "wdir": "../..",
                "cmd": SHELL_PREPARE,
                "params": [{PARAMS: ["mllc.stages", "data.cleaning"]}],
                "deps": ["data/raw.csv"],
                "outs": [f"{P}/data/clean.csv", f"{P}/data/shards"],
                "metrics": [{f"{P}/reports/data.json": {"cache": False}}],
            },
            "train": {
                "foreach": ["forest", "logreg"],
                "do": {
                    "wdir": "../..",
                    "cmd": SHELL_TRAIN,
                    "params": [{PARAMS: ["mllc.stages", "data.split.seed", "models.${item}"]}],
                    "deps": [f"{P}/data/clean.csv", "data/images"],
                    "outs": [f"{P}/candidates/${{item}}.txt"],
                    "metrics": [{f"{P}/reports/train/${{item}}.json": {"cache": False}}],
                },
            },
            "select": {
                "wdir": "../..",
                "cmd": SHELL_SELECT,
                "params": [{PARAMS: ["mllc.stages", "models"]}],
                "deps": [f"{P}/candidates/forest.txt", f"{P}/candidates/logreg.txt"],
                "outs": [f"{P}/model.txt", {f"{P}/lineage.json": {"cache": False}}],
                "metrics": [{f"{P}/metrics.json": {"cache": False}}],
                "plots": [
                    {
                        f"{P}/plots/confusion.csv": {
                            "cache": False,
                            "template": "confusion",
                            "x": "actual",
                            "y": "predicted",
                        }
                    }
                ],
            },
        }
    }


def base_params() -> dict[str, Any]:
    return {
        "mllc": {"stages": 1},
        "data": {"cleaning": {"dropna": True}, "split": {"seed": 42, "test": 0.2}},
        "models": {
            "forest": {"estimator": "rf", "params": {"n_estimators": 100, "max_depth": 4}},
            # 1e-05 and "on" are written differently by DVC (YAML 1.2) in the
            # lock than PyYAML would read them: "no change" must stay no change.
            "logreg": {"estimator": "lr", "params": {"C": 1.0, "tol": 1e-05, "penalty": "on"}},
        },
    }


def write_yaml(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="module")
def base_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("observe") / "repo"
    repo.mkdir()
    run("git", "init", "-q", cwd=repo)
    dvc("init", "-q", cwd=repo)
    (repo / "data/images").mkdir(parents=True)
    (repo / "data/raw.csv").write_text("x,y\n1,2\n3,4\n", encoding="utf-8")
    (repo / "data/images/a.txt").write_text("a\n", encoding="utf-8")
    (repo / "data/images/sub").mkdir()
    (repo / "data/images/sub/b.txt").write_text("b\n", encoding="utf-8")
    write_yaml(repo / DVC_YAML, base_dvc_doc())
    write_yaml(repo / PARAMS, base_params())
    dvc("repro", "-q", DVC_YAML, cwd=repo)
    run("git", "add", "-A", cwd=repo)
    run("git", "commit", "-q", "-m", "base", cwd=repo)
    return repo


@pytest.fixture
def repo(base_repo: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(base_repo, copy, symlinks=True)
    return copy


# -- scenarios ---------------------------------------------------------------------------


def edit_params(fn: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def apply(repo: Path) -> None:
        data = load_yaml((repo / PARAMS).read_text(encoding="utf-8"))
        fn(data)
        write_yaml(repo / PARAMS, data)

    return apply


def edit_stages(fn: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def apply(repo: Path) -> None:
        data = load_yaml((repo / DVC_YAML).read_text(encoding="utf-8"))
        fn(data["stages"])
        write_yaml(repo / DVC_YAML, data)

    return apply


def write(path: str, text: str) -> Callable[[Path], None]:
    def apply(repo: Path) -> None:
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text, encoding="utf-8")

    return apply


def delete(path: str) -> Callable[[Path], None]:
    def apply(repo: Path) -> None:
        target = repo / path
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()

    return apply


def both(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def apply(repo: Path) -> None:
        for step in steps:
            step(repo)

    return apply


def move_cache(repo: Path) -> None:
    """The cache elsewhere, as `dvc cache dir ../elsewhere` records it (relative to .dvc/)."""
    shutil.move(repo / ".dvc/cache", repo.parent / "elsewhere")
    (repo / ".dvc/config").write_text("[cache]\n    dir = ../../elsewhere\n", encoding="utf-8")


def drop_cache_object(out: str, cache: str = ".dvc/cache") -> Callable[[Path], None]:
    def apply(repo: Path) -> None:
        lock = read_lock(repo / LOCK)
        assert lock is not None
        md5 = next(
            o["md5"] for s in lock["stages"].values() for o in s.get("outs", []) if o["path"] == out
        )
        obj = repo / cache / "files/md5" / md5[:2] / md5[2:]
        obj.chmod(0o644)
        obj.unlink()

    return apply


def delete_dir_cache_entry(out: str, cache: str = ".dvc/cache") -> Callable[[Path], None]:
    """Remove one file of a directory out from the cache (its .dir listing stays)."""

    def apply(repo: Path) -> None:
        lock = read_lock(repo / LOCK)
        assert lock is not None
        md5 = next(
            o["md5"] for s in lock["stages"].values() for o in s.get("outs", []) if o["path"] == out
        )
        objects = repo / cache / "files/md5"
        listing = json.loads((objects / md5[:2] / md5[2:]).read_text(encoding="utf-8"))
        unique = listing[-1]["md5"]  # b.csv; a.csv has clean.csv's content, shared
        entry = objects / unique[:2] / unique[2:]
        entry.chmod(0o644)
        entry.unlink()

    return apply


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def fn(data: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        for p in parents:
            data = data[p]
        data[leaf] = value

    return fn


def _del(path: str) -> Callable[[dict[str, Any]], None]:
    def fn(data: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        for p in parents:
            data = data[p]
        del data[leaf]

    return fn


Check = tuple[str, str, str, str]  # stage, reason kind, path ("" = any), detail ("" = any)


def has(stage: str, kind: str, path: str = "", detail: str = "") -> Check:
    return (stage, kind, path, detail)


TRAIN = {"train@forest", "train@logreg"}
ALL = {"prepare", *TRAIN, "select"}
N_EST = "models.forest.params.n_estimators"


def _add_stage(stages: dict[str, Any]) -> None:
    stages["report"] = {
        "wdir": "../..",
        "cmd": f"cp {P}/model.txt {P}/report.txt",
        "deps": [f"{P}/model.txt"],
        "outs": [f"{P}/report.txt"],
    }


def _add_candidate(stages: dict[str, Any]) -> None:
    stages["train"]["foreach"].append("svm")


# (id, change, stale stages we expect (DVC must agree), reason checks)
SCENARIOS: list[tuple[str, Callable[[Path], None], set[str], list[Check]]] = [
    ("no change", lambda repo: None, set(), []),
    (
        "nested param",
        edit_params(_set(N_EST, 200)),
        {"train@forest", "select"},
        [has("train@forest", "param", N_EST, "modified"), has("select", "param", N_EST)],
    ),
    ("float 1.0 -> 1", edit_params(_set("models.logreg.params.C", 1)), set(), []),
    ("int 4 -> 4.0", edit_params(_set("models.forest.params.max_depth", 4.0)), set(), []),
    ("bool true -> 1", edit_params(_set("data.cleaning.dropna", 1)), set(), []),
    (
        "add param key",
        edit_params(_set("models.forest.params.min_leaf", 2)),
        {"train@forest", "select"},
        [has("train@forest", "param", "models.forest.params.min_leaf", "added")],
    ),
    (
        "remove param key",
        edit_params(_del("models.logreg.params.C")),
        {"train@logreg", "select"},
        [has("train@logreg", "param", "models.logreg.params.C", "removed")],
    ),
    (
        "remove a tracked key",
        edit_params(_del("data.cleaning")),
        {"prepare"},
        [has("prepare", "param", "data.cleaning", "removed")],
    ),
    (
        "add a candidate to params",
        edit_params(_set("models.svm", {"estimator": "svm"})),
        {"select"},
        [has("select", "param", "models.svm", "added")],
    ),
    (
        "stage code version",
        edit_params(_set("mllc.stages", 2)),
        ALL,
        [has("prepare", "code", "mllc.stages", "modified"), has("select", "code", "mllc.stages")],
    ),
    (
        "params file deleted",
        delete(PARAMS),
        ALL,
        [has("prepare", "param", PARAMS, "deleted")],
    ),
    (
        "edit a dep",
        write("data/raw.csv", "x,y\n1,2\n"),
        {"prepare"},
        [has("prepare", "dep", "data/raw.csv", "modified")],
    ),
    (
        "delete a dep",
        delete("data/raw.csv"),
        {"prepare"},
        [has("prepare", "dep", "data/raw.csv", "deleted")],
    ),
    (
        "directory dep: a file changed",
        write("data/images/sub/b.txt", "B\n"),
        TRAIN,
        [has("train@logreg", "dep", "data/images", "modified")],
    ),
    (
        "directory dep: a file added",
        write("data/images/c.txt", "c\n"),
        TRAIN,
        [has("train@forest", "dep", "data/images", "modified")],
    ),
    (
        "delete an out (also select's dep)",
        delete(f"{P}/candidates/forest.txt"),
        {"train@forest", "select"},
        [
            has("train@forest", "out", f"{P}/candidates/forest.txt", "deleted"),
            has("select", "dep", f"{P}/candidates/forest.txt", "deleted"),
        ],
    ),
    (
        "modify an out",
        write(f"{P}/model.txt", "tampered\n"),
        {"select"},
        [has("select", "out", f"{P}/model.txt", "modified")],
    ),
    (
        "directory out: a file changed",
        write(f"{P}/data/shards/b.csv", "bb\n"),
        {"prepare"},
        [has("prepare", "out", f"{P}/data/shards", "modified")],
    ),
    (
        "delete a cache:false metrics out",
        delete(f"{P}/metrics.json"),
        {"select"},
        [has("select", "out", f"{P}/metrics.json", "deleted")],
    ),
    (
        "modify a cache:false plot",
        write(f"{P}/plots/confusion.csv", "actual,predicted\n"),
        {"select"},
        [has("select", "out", f"{P}/plots/confusion.csv", "modified")],
    ),
    (
        "cache object missing",
        drop_cache_object(f"{P}/model.txt"),
        {"select"},
        [has("select", "out", f"{P}/model.txt", "not in cache")],
    ),
    (
        "cache dir moved, an object missing",
        both(move_cache, drop_cache_object(f"{P}/candidates/logreg.txt", "../elsewhere")),
        {"train@logreg"},
        [has("train@logreg", "out", f"{P}/candidates/logreg.txt", "not in cache")],
    ),
    (
        "directory out: a cache file missing",
        both(move_cache, delete_dir_cache_entry(f"{P}/data/shards", "../elsewhere")),
        {"prepare"},
        [has("prepare", "out", f"{P}/data/shards", "not in cache")],
    ),
    (
        "change a cmd",
        edit_stages(lambda s: s["prepare"].update(cmd=s["prepare"]["cmd"] + " && true")),
        {"prepare"},
        [has("prepare", "cmd")],
    ),
    (
        "change the foreach cmd",
        edit_stages(lambda s: s["train"]["do"].update(cmd=s["train"]["do"]["cmd"] + " && true")),
        TRAIN,
        [has("train@forest", "cmd")],
    ),
    ("add a stage", edit_stages(_add_stage), {"report"}, [has("report", "never-run")]),
    (
        "add a foreach item",
        both(edit_stages(_add_candidate), edit_params(_set("models.svm", {"estimator": "svm"}))),
        {"train@svm", "select"},
        [has("train@svm", "never-run"), has("select", "param", "models.svm", "added")],
    ),
    (
        "add a callback stage",
        edit_stages(lambda s: s.update(hello={"wdir": "../..", "cmd": "echo hi"})),
        {"hello"},
        [has("hello", "never-run")],
    ),
    (
        "always_changed",
        edit_stages(lambda s: s["prepare"].update(always_changed=True)),
        {"prepare"},
        [has("prepare", "definition")],
    ),
    (
        "frozen stage, dep edited",
        both(
            edit_stages(lambda s: s["prepare"].update(frozen=True)),
            write("data/raw.csv", "changed\n"),
        ),
        set(),
        [],
    ),
    (
        "frozen stage, out deleted",
        both(
            edit_stages(lambda s: s["prepare"].update(frozen=True)),
            delete(f"{P}/data/clean.csv"),
        ),
        {"prepare", *TRAIN},
        [has("prepare", "out", f"{P}/data/clean.csv", "deleted")],
    ),
    (
        "frozen stage, cmd changed",
        edit_stages(lambda s: s["select"].update(frozen=True, cmd=s["select"]["cmd"] + " && true")),
        {"select"},
        [has("select", "cmd")],
    ),
    (
        "new frozen stage with deps only",
        edit_stages(
            lambda s: s.update(
                check={"wdir": "../..", "cmd": "true", "deps": ["data/raw.csv"], "frozen": True}
            )
        ),
        set(),
        [],
    ),
    (
        "add a dep to a stage",
        edit_stages(lambda s: s["select"]["deps"].append("data/raw.csv")),
        {"select"},
        [has("select", "dep", "data/raw.csv", "new")],
    ),
    (
        "remove a dep from a stage",
        edit_stages(lambda s: s["train"]["do"]["deps"].remove("data/images")),
        set(),
        [],
    ),
    (
        "remove an out from a stage",
        edit_stages(lambda s: s["select"]["outs"].pop()),
        set(),
        [],
    ),
    (
        "a metrics file becomes a plain cache:false out",
        edit_stages(lambda s: s["prepare"]["outs"].append(s["prepare"].pop("metrics")[0])),
        set(),
        [],
    ),
    (
        "declare a new metrics out",
        edit_stages(lambda s: s["select"]["metrics"].append({f"{P}/more.json": {"cache": False}})),
        {"select"},
        [has("select", "out", f"{P}/more.json", "declared, not produced yet")],
    ),
    (
        "track another param key",
        edit_stages(lambda s: s["train"]["do"]["params"][0][PARAMS].append("data.split.test")),
        TRAIN,
        [has("train@forest", "param", "data.split.test", "new")],
    ),
    (
        "stop tracking a param key",
        edit_stages(lambda s: s["select"]["params"][0][PARAMS].remove("models")),
        set(),
        [],
    ),
    (
        "track the whole params file",
        edit_stages(lambda s: s["prepare"].update(params=[{PARAMS: None}])),
        {"prepare"},
        [has("prepare", "param", "models", "new")],
    ),
    (
        "lock deleted",
        delete(LOCK),
        ALL,
        [has(name, "never-run") for name in ALL],
    ),
]


# Also asked of the `dvc status --json` command line, to show the in-process
# answer is the command's.
CLI_CHECKED = {"no change", "nested param", "cache object missing", "frozen stage, out deleted"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "expected", "checks", "cli"),
    [pytest.param(c, e, k, i in CLI_CHECKED, id=i) for i, c, e, k in SCENARIOS],
)
def test_stale_stages_match_dvc_status(
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[Path], None],
    expected: set[str],
    checks: list[Check],
    cli: bool,
) -> None:
    change(repo)
    states = observe(repo)  # before DVC touches the copy
    ours = {name for name, s in states.items() if s.stale}
    theirs = dvc_stale_in_process(repo, monkeypatch)
    if cli:
        assert dvc_stale(repo) == theirs
    assert ours == theirs, {n: [r.text() for r in s.reasons] for n, s in states.items()}
    assert ours == expected
    for stage, kind, path, detail in checks:
        reasons = states[stage].reasons
        assert any(
            r.kind == kind and path in ("", r.path) and detail in ("", r.detail) for r in reasons
        ), (stage, kind, path, detail, [r.text() for r in reasons])
    for s in states.values():
        assert s.stale == bool(s.reasons)


@pytest.mark.slow
def test_directory_and_file_hashes_equal_the_lock(base_repo: Path) -> None:
    lock = read_lock(base_repo / LOCK)
    assert lock is not None
    hasher = Hasher(base_repo, None)
    seen = 0
    for stage in lock["stages"].values():
        for entry in [*stage.get("deps", []), *stage.get("outs", [])]:
            assert hasher.md5(entry["path"]) == entry["md5"], entry["path"]
            seen += entry["md5"].endswith(".dir")
    assert seen >= 3  # data/images twice, the shards out once


@pytest.mark.slow
def test_state_lists_paths_in_repo_terms(base_repo: Path) -> None:
    states = observe(base_repo)
    assert list(states) == ["prepare", "train@forest", "train@logreg", "select"]
    assert states["train@logreg"].deps == (f"{P}/data/clean.csv", "data/images")
    assert states["select"].outs == (
        f"{P}/model.txt",
        f"{P}/lineage.json",
        f"{P}/metrics.json",
        f"{P}/plots/confusion.csv",
    )


# -- timing on ~50 stages (reported, not asserted) -----------------------------------------


@pytest.mark.slow
def test_timing_against_dvc_status_on_50_stages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "big"
    repo.mkdir()
    run("git", "init", "-q", cwd=repo)
    dvc("init", "-q", cwd=repo)
    folder = "pipelines/big"
    items = [f"m{i:02d}" for i in range(48)]
    params_file = f"{folder}/params.yaml"
    doc = {
        "stages": {
            "prepare": {
                "wdir": "../..",
                "cmd": f"cp in.txt {folder}/clean.txt",
                "params": [{params_file: ["mllc.stages"]}],
                "deps": ["in.txt"],
                "outs": [f"{folder}/clean.txt"],
            },
            "train": {
                "foreach": items,
                "do": {
                    "wdir": "../..",
                    "cmd": f"cp {folder}/clean.txt {folder}/out/${{item}}.txt",
                    "params": [{params_file: ["mllc.stages", "models.${item}"]}],
                    "deps": [f"{folder}/clean.txt"],
                    "outs": [f"{folder}/out/${{item}}.txt"],
                },
            },
            "select": {
                "wdir": "../..",
                "cmd": f"cat {folder}/out/* > {folder}/model.txt",
                "params": [{params_file: ["mllc.stages", "models"]}],
                "deps": [f"{folder}/out"],
                "outs": [f"{folder}/model.txt"],
            },
        }
    }
    models = {m: {"params": {"n": i, "lr": 0.1}} for i, m in enumerate(items)}
    write_yaml(repo / folder / "dvc.yaml", doc)
    write_yaml(repo / params_file, {"mllc": {"stages": 1}, "models": models})
    (repo / "in.txt").write_text("x\n" * 1000, encoding="utf-8")
    (repo / folder / "out").mkdir(parents=True)
    shutil.copy(repo / "in.txt", repo / folder / "clean.txt")
    for m in items:
        shutil.copy(repo / "in.txt", repo / folder / "out" / f"{m}.txt")
    (repo / folder / "model.txt").write_text("x\n" * 1000 * len(items), encoding="utf-8")
    # The stages' results exist already: record them without running 50 processes.
    dvc("commit", "-f", "-q", f"{folder}/dvc.yaml", cwd=repo)
    dvc_yaml = f"{folder}/dvc.yaml"

    def ours(cache: Path | None) -> tuple[float, set[str]]:
        start = time.perf_counter()
        hasher = Hasher(repo, cache)
        states = pipeline_status(
            repo,
            dvc_yaml,
            load_yaml((repo / dvc_yaml).read_text(encoding="utf-8")),
            {params_file: load_yaml((repo / params_file).read_text(encoding="utf-8"))},
            read_lock(repo / folder / "dvc.lock"),
            hasher,
        )
        hasher.save()
        return time.perf_counter() - start, {s.name for s in states if s.stale}

    def theirs() -> tuple[float, set[str]]:
        start = time.perf_counter()
        stale = dvc_stale(repo, dvc_yaml)
        return time.perf_counter() - start, stale

    # Files just written are "racily clean" for 2 s and never cached: age them.
    old = time.time() - 3600
    for path in repo.rglob("*"):
        if ".git" not in path.parts and path.is_file():
            os.utime(path, (old, old))
    cache = tmp_path / "md5.json"
    cold, ours_stale = ours(None)
    ours(cache)
    warm = min(ours(cache)[0] for _ in range(3))
    dvc_time, dvc_stale_set = theirs()
    assert ours_stale == dvc_stale_set == set()

    models["m07"]["params"]["lr"] = 0.2
    write_yaml(repo / params_file, {"mllc": {"stages": 1}, "models": models})
    changed, ours_changed = ours(cache)
    dvc_changed, dvc_changed_set = theirs()
    assert ours_changed == dvc_changed_set == {"train@m07", "select"}

    with capsys.disabled():
        print(
            f"\n[timing, {len(items) + 2} stages] pipeline_status: cold {cold * 1000:.1f} ms,"
            f" warm cache {warm * 1000:.1f} ms, one param changed {changed * 1000:.1f} ms;"
            f" dvc status: {dvc_time * 1000:.0f} ms, one param changed"
            f" {dvc_changed * 1000:.0f} ms"
        )


# -- without disk: expansion, leaf diff, YAML, hashes ---------------------------------


def test_expand_stages_substitutes_item_and_key_everywhere() -> None:
    doc = {
        "stages": {
            "prepare": {"cmd": r"echo \${HOME}", "outs": ["a"]},
            "train": {
                "foreach": ["forest", True, 3],
                "do": {
                    "cmd": "train ${item}",
                    "params": [{"p.yaml": ["models.${item}"]}],
                    "outs": ["c/${item}.joblib"],
                    "metrics": [{"r/${item}.json": {"cache": False}}],
                    "meta": "${item}",
                },
            },
            "fit": {
                "foreach": {"small": {"n": 1}, "big": {"n": 9}},
                "do": {"cmd": "fit ${key} --n ${item.n}", "outs": ["${key}.bin"]},
            },
            "each": {"foreach": [{"x": 1}, {"x": 2}], "do": {"cmd": "x=${item.x}"}},
        }
    }
    stages = expand_stages(doc)
    assert list(stages) == [
        "prepare",
        "train@forest",
        "train@true",
        "train@3",
        "fit@small",
        "fit@big",
        "each@0",
        "each@1",
    ]
    assert stages["prepare"]["cmd"] == "echo ${HOME}"  # "\${" is DVC's escape
    forest = stages["train@forest"]
    assert forest["cmd"] == "train forest"
    assert forest["params"] == [{"p.yaml": ["models.forest"]}]
    assert forest["outs"] == ["c/forest.joblib"]
    assert forest["metrics"] == [{"r/forest.json": {"cache": False}}]
    assert stages["train@true"]["cmd"] == "train true"
    assert stages["train@3"]["meta"] == 3  # a whole "${item}" keeps its type
    assert stages["fit@big"] == {"cmd": "fit big --n 9", "outs": ["big.bin"]}
    assert stages["each@1"]["cmd"] == "x=2"


def test_expand_stages_matches_the_golden_dvc_yaml() -> None:
    golden = Path(__file__).parent / "golden/compile/iris/expected/pipelines/iris/dvc.yaml"
    stages = expand_stages(load_yaml(golden.read_text(encoding="utf-8")))
    assert list(stages) == [
        "prepare",
        "split",
        "train@logreg",
        "train@forest",
        "evaluate",
        "select",
    ]
    forest = stages["train@forest"]
    assert forest["cmd"] == "mllc stage train iris forest"
    assert "models.forest" in forest["params"][0]["pipelines/iris/params.yaml"]
    assert forest["outs"] == [
        "pipelines/iris/candidates/forest.joblib",
        "pipelines/iris/reports/train/forest.json",
    ]


def test_diff_params_reports_leaves() -> None:
    old = {"estimator": "rf", "params": {"n_estimators": 100, "depth": 3, "lr": 1.0}, "x": [1, 2]}
    new = {"estimator": "rf", "params": {"n_estimators": 200, "lr": 1, "seed": 0}, "x": [1, 3]}
    got = diff_params("models.forest", old, new)
    # lr 1.0 -> 1 is no change, as for DVC; lists are compared whole.
    assert got == [
        Reason("param", "models.forest.params.n_estimators", "modified", 100, 200),
        Reason("param", "models.forest.params.depth", "removed", old=3),
        Reason("param", "models.forest.params.seed", "added", new=0),
        Reason("param", "models.forest.x", "modified", [1, 2], [1, 3]),
    ]
    assert diff_params("mllc", {"stages": 1}, {"stages": 2}) == [
        Reason("code", "mllc.stages", "modified", 1, 2)
    ]
    assert diff_params("k", {"a": 1}, 5) == [Reason("param", "k", "modified", {"a": 1}, 5)]
    assert diff_params("k", {"a": {"b": True}}, {"a": {"b": True}}) == []


def test_pipeline_status_without_dvc_on_disk(tmp_path: Path) -> None:
    """A lock written by hand: params leaves, code, cmd, a missing dep, never-run."""
    (tmp_path / "in.txt").write_bytes(b"data\n")
    md5 = hashlib.md5(b"data\n").hexdigest()
    doc = {
        "stages": {
            "a": {
                "wdir": "../..",
                "cmd": "run a",
                "params": [{"pipelines/x/params.yaml": ["mllc.stages", "models.m"]}],
                "deps": ["in.txt", "gone.txt"],
            },
            "b": {"wdir": "../..", "cmd": "run b", "deps": ["in.txt"]},
        }
    }
    lock = {
        "schema": "2.0",
        "stages": {
            "a": {
                "cmd": "run a (old)",
                "deps": [
                    {"path": "in.txt", "hash": "md5", "md5": md5, "size": 5},
                    {"path": "gone.txt", "hash": "md5", "md5": md5, "size": 5},
                ],
                "params": {
                    "pipelines/x/params.yaml": {"mllc.stages": 1, "models.m": {"p": {"n": 1}}}
                },
            }
        },
    }
    params = {"pipelines/x/params.yaml": {"mllc": {"stages": 2}, "models": {"m": {"p": {"n": 2}}}}}
    a, b = pipeline_status(tmp_path, "pipelines/x/dvc.yaml", doc, params, lock, Hasher(tmp_path))
    assert a.stale and b.stale
    assert set(a.reasons) == {
        Reason("cmd", old="run a (old)", new="run a"),
        Reason("code", "mllc.stages", "modified", 1, 2),
        Reason("param", "models.m.p.n", "modified", 1, 2),
        Reason("dep", "gone.txt", "deleted", old=md5),
    }
    assert b.reasons == (Reason("never-run"),)
    assert [r.text() for r in a.reasons][:2] == [
        "command changed",
        "code changed: mllc.stages 1 → 2",
    ]


def test_load_yaml_reads_scalars_as_dvc_does(tmp_path: Path) -> None:
    # ruamel (DVC) resolves YAML 1.2; PyYAML alone would give "1e-05" and True here.
    assert load_yaml("a: 1e-05\nb: on\nc: yes\nd: 010\ne: 0o10\nf: 1:20\ng: .inf\n") == {
        "a": 1e-05,
        "b": "on",
        "c": "yes",
        "d": 10,
        "e": 8,
        "f": "1:20",
        "g": float("inf"),
    }
    assert read_lock(tmp_path / "absent.lock") is None
    (tmp_path / "empty.lock").write_text("", encoding="utf-8")
    assert read_lock(tmp_path / "empty.lock") == {}


def _age(path: Path) -> None:
    old = time.time() - 3600
    os.utime(path, (old, old))


def test_hasher_cache_avoids_rereading_and_notices_changes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.bin").write_bytes(b"\x00\x01" * 5000)
    (data / "d").mkdir()
    (data / "d/x.txt").write_text("x\n", encoding="utf-8")
    for p in [data / "a.bin", data / "d/x.txt"]:
        _age(p)
    cache = tmp_path / ".mllc/cache/md5.json"

    first = Hasher(tmp_path, cache)
    a = first.md5("data/a.bin")
    tree = first.md5("data/d")
    assert a == hashlib.md5(b"\x00\x01" * 5000).hexdigest()
    assert tree == tree_md5([("x.txt", hashlib.md5(b"x\n").hexdigest())])
    assert first.reads == 2
    first.save()
    assert json.loads(cache.read_text(encoding="utf-8"))["version"] == 1

    second = Hasher(tmp_path, cache)
    assert (second.md5("data/a.bin"), second.md5("data/d")) == (a, tree)
    assert second.reads == 0  # answered from the saved cache

    (data / "d/x.txt").write_text("changed\n", encoding="utf-8")
    _age(data / "d/x.txt")
    assert second.md5("data/d") == tree_md5([("x.txt", hashlib.md5(b"changed\n").hexdigest())])
    assert second.reads == 1  # only the changed file was read again
    assert second.md5("data/missing") is None

    # A file written just now is hashed but not trusted to the cache (racily clean).
    (data / "new.txt").write_text("n\n", encoding="utf-8")
    assert second.md5("data/new.txt") == hashlib.md5(b"n\n").hexdigest()
    assert second.md5("data/new.txt") is not None and second.reads == 3

    cache.write_text("{not json", encoding="utf-8")
    assert Hasher(tmp_path, cache).md5("data/a.bin") == a  # a corrupt cache is no cache


def test_dos2unix_hash_matches_dvc_data(tmp_path: Path) -> None:
    from dvc_data.hashfile.hash import file_md5 as dvc_file_md5

    text = tmp_path / "crlf.txt"
    text.write_bytes(b"a,b\r\n1,2\r\n" * 100_000)  # > 1 MiB: chunked like DVC
    binary = tmp_path / "bin"
    binary.write_bytes(bytes(range(256)) * 10 + b"\r\n")
    for path in (text, binary):
        for algorithm in ("md5", MD5_DOS2UNIX):
            assert file_md5(path, algorithm) == dvc_file_md5(str(path), name=algorithm)
