"""What a pull request controls cannot make validate or plan unbounded or read outside.

A pull request controls every file of the checkout: specs, generated files,
``dvc.lock``, params, ``.dvc`` pointers, data, and every symlink among them.
These tests build such a checkout (a real Git repository, the real CLI as a
subprocess with an address-space limit and a timeout) and check that
``mllc plan``/``validate`` stop quickly with one error naming the file, read
nothing outside the repository, and hash or cache nothing from there.
"""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers_repo import NAME, PIPE, copy_repo, dump_spec, env, fast_spec, fresh_repo, mllc

LIMIT_AS = 1 << 30  # 1 GiB of address space: a plan needs ~40 MiB resident
TIMEOUT = 60.0  # seconds: the refused cases finish in well under one


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_AS, LIMIT_AS))


def bounded(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m mllc ARGS`` with 1 GiB of address space at most (a bomb hits it)."""
    return subprocess.run(
        [sys.executable, "-m", "mllc", *args],
        cwd=cwd,
        env=env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=_limited,
        check=False,
    )


def alias_bomb(indent: str = "") -> str:
    """Ten levels of ten aliases: 10**9 strings once expanded, ~1 KiB as text."""
    lines = [f'{indent}l0: &l0 ["boom", "boom", "boom", "boom", "boom"]']
    for i in range(1, 10):
        lines.append(f"{indent}l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.fixture
def repo(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """A copy of the fresh repository with its generated files written (mllc compile)."""
    path = copy_repo(fresh_repo(tmp_path_factory), tmp_path / "repo")
    mllc("compile", cwd=path)
    return path


def assert_refused(proc: subprocess.CompletedProcess[str], file: str) -> None:
    """Exit 1 (a user error, not a crash), one error naming ``file``, no traceback."""
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    output = proc.stdout + proc.stderr  # validate reports on stdout, plan on stderr
    assert f"{file}:" in output, output
    assert "Traceback" not in output and "unexpected error" not in output


# ------------------------------------------------------------------ alias bombs


def test_alias_bomb_in_dvc_lock_is_refused_naming_it(repo: Path) -> None:
    # The bomb sits where plan compares it: the locked value of a tracked param.
    lock = (
        "schema: '2.0'\nanchors:\n"
        + alias_bomb("  ")
        + "stages:\n  prepare:\n    cmd: mllc stage prepare iris\n    params:\n"
        + "      pipelines/iris/params.yaml:\n        data.cleaning: *l9\n"
    )
    (repo / PIPE / "dvc.lock").write_text(lock, encoding="utf-8")
    proc = bounded("plan", cwd=repo)
    assert_refused(proc, f"{PIPE}/dvc.lock")
    assert "more than 100000 values" in proc.stderr


def test_alias_bomb_in_params_yaml_is_refused_naming_it(repo: Path) -> None:
    params = repo / PIPE / "params.yaml"
    header = params.read_text(encoding="utf-8").splitlines()[0]
    params.write_text(f"{header}\n{alias_bomb()}data: *l9\n", encoding="utf-8")
    (repo / PIPE / "lifecycle.yaml").unlink()  # so that plan diffs params leaf by leaf
    proc = bounded("plan", cwd=repo)
    assert_refused(proc, f"{PIPE}/params.yaml")


def test_alias_bomb_in_lifecycle_yaml_is_refused_naming_it(repo: Path) -> None:
    record = repo / PIPE / "lifecycle.yaml"
    header = record.read_text(encoding="utf-8").splitlines()[0]
    record.write_text(f"{header}\n{alias_bomb()}gates: *l9\nmetadata: *l9\n", encoding="utf-8")
    proc = bounded("plan", cwd=repo)
    assert_refused(proc, f"{PIPE}/lifecycle.yaml")


def test_every_bomb_is_reported_at_once(repo: Path) -> None:
    for name in ("params.yaml", "lifecycle.yaml"):
        (repo / PIPE / name).write_text(f"{alias_bomb()}x: *l9\n", encoding="utf-8")
    proc = bounded("plan", cwd=repo)
    assert_refused(proc, f"{PIPE}/params.yaml")
    assert f"{PIPE}/lifecycle.yaml:" in proc.stderr


def test_alias_bomb_in_a_dvc_pointer_is_refused_naming_it(repo: Path) -> None:
    spec = fast_spec()
    spec["data"]["source"] = {"csv": "data/iris.csv"}
    (repo / "specs" / f"{NAME}.yaml").write_text(dump_spec(spec), encoding="utf-8")
    mllc("compile", cwd=repo)
    (repo / "data").mkdir()
    (repo / "data" / "iris.csv").write_text("a,target\n1,x\n", encoding="utf-8")
    pointer = f"{alias_bomb()}outs:\n- md5: *l9\n  path: iris.csv\n"
    (repo / "data" / "iris.csv.dvc").write_text(pointer, encoding="utf-8")
    proc = bounded("plan", cwd=repo)
    assert_refused(proc, "data/iris.csv.dvc")


def test_metrics_json_symlinked_to_dev_zero_is_refused(repo: Path) -> None:
    (repo / PIPE / "metrics.json").symlink_to("/dev/zero")
    proc = bounded("plan", cwd=repo)
    assert_refused(proc, f"{PIPE}/metrics.json")


def test_generated_file_symlinked_outside_is_refused(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "dvc.yaml"
    outside.write_text("# generated by mllc\nstages: {outside-stage: {cmd: x}}\n", "utf-8")
    (repo / PIPE / "dvc.yaml").unlink()
    (repo / PIPE / "dvc.yaml").symlink_to(outside)
    proc = bounded("plan", cwd=repo)
    assert_refused(proc, f"{PIPE}/dvc.yaml")
    assert "outside-stage" not in proc.stdout + proc.stderr


# ------------------------------------------------------------- data through symlinks


def csv_repo(repo: Path) -> Path:
    """The repository with its spec reading data/iris.csv, compiled, and a dvc.lock that
    records that file as prepare's dep (so plan hashes it, as after a first apply)."""
    spec = fast_spec()
    spec["data"]["source"] = {"csv": "data/iris.csv"}
    (repo / "specs" / f"{NAME}.yaml").write_text(dump_spec(spec), encoding="utf-8")
    mllc("compile", cwd=repo)
    entry = {"path": "data/iris.csv", "hash": "md5", "md5": "0" * 32, "size": 1}
    lock = {"schema": "2.0", "stages": {"prepare": {"cmd": "x", "deps": [entry]}}}
    (repo / PIPE / "dvc.lock").write_text(yaml.safe_dump(lock), encoding="utf-8")
    (repo / "data").mkdir()
    return repo


def test_data_symlinked_to_dev_zero_is_refused_without_reading(repo: Path) -> None:
    csv_repo(repo)
    (repo / "data" / "iris.csv").symlink_to("/dev/zero")
    proc = bounded("plan", cwd=repo)
    assert_refused(proc, "data/iris.csv")
    assert "character device" in proc.stderr or "outside the repository" in proc.stderr


def test_data_symlinked_outside_is_neither_hashed_nor_cached_nor_printed(
    repo: Path, tmp_path: Path
) -> None:
    csv_repo(repo)
    secret = tmp_path / "outside" / "secret.csv"
    secret.parent.mkdir()
    secret.write_text("sepal length (cm),target\n5.1,top-secret-value\n", encoding="utf-8")
    os.utime(secret, ns=(1_000_000_000, 1_000_000_000))  # old: a hash would be cached
    digest = hashlib.md5(secret.read_bytes()).hexdigest()
    (repo / "data" / "iris.csv").symlink_to(secret)
    proc = bounded("plan", "--json", cwd=repo)
    assert_refused(proc, "data/iris.csv")
    output = proc.stdout + proc.stderr
    assert digest not in output and "top-secret" not in output and str(secret) not in output
    cache = repo / ".mllc" / "cache" / "md5.json"
    assert not cache.exists() or digest not in cache.read_text(encoding="utf-8")
    # The same file inside the repository is hashed as before: only the place differs.
    (repo / "data" / "iris.csv").unlink()
    (repo / "data" / "iris.csv").write_bytes(secret.read_bytes())
    os.utime(repo / "data" / "iris.csv", ns=(1_000_000_000, 1_000_000_000))
    assert mllc("plan", cwd=repo, check=False).returncode in (0, 2)
    assert digest in cache.read_text(encoding="utf-8")


def test_data_symlinked_inside_the_repository_is_followed(repo: Path) -> None:
    csv_repo(repo)
    (repo / "data" / "real.csv").write_text("a,target\n1,x\n", encoding="utf-8")
    (repo / "data" / "iris.csv").symlink_to("real.csv")
    os.utime(repo / "data" / "real.csv", ns=(1_000_000_000, 1_000_000_000))
    proc = bounded("plan", cwd=repo)
    assert proc.returncode in (0, 2), proc.stderr
    digest = hashlib.md5(b"a,target\n1,x\n").hexdigest()
    cache = repo / ".mllc" / "cache" / "md5.json"
    assert digest in cache.read_text(encoding="utf-8")


def test_fifo_as_data_is_refused_without_opening(repo: Path) -> None:
    csv_repo(repo)
    os.mkfifo(repo / "data" / "iris.csv")  # opening it for reading would block forever
    proc = bounded("plan", cwd=repo)
    assert_refused(proc, "data/iris.csv")
    assert "is a FIFO, not a regular file" in proc.stderr


def test_fifo_in_a_hashed_folder_is_refused_naming_it(tmp_path: Path) -> None:
    from mllc.hashing import Hasher
    from mllc.saferead import RefusedRead

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("a\n1\n", encoding="utf-8")
    os.mkfifo(tmp_path / "data" / "pipe.csv")
    with pytest.raises(RefusedRead) as caught:
        Hasher(tmp_path).md5("data")
    assert caught.value.diagnostics[0].file == "data/pipe.csv"
    assert "FIFO" in caught.value.diagnostics[0].message


# ------------------------------------------------------------------------- specs


def test_spec_symlinked_outside_is_refused_before_parsing(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.yaml"
    # An invalid spec whose diagnostics would quote it, were it parsed.
    outside.write_text("apiVersion: mllc/v1\nkind: s3cr3t-kind-value\n", encoding="utf-8")
    spec = repo / "specs" / f"{NAME}.yaml"
    spec.unlink()
    spec.symlink_to(outside)
    for command in (["validate"], ["plan"], ["validate", f"specs/{NAME}.yaml"]):
        proc = bounded(*command, cwd=repo)
        assert_refused(proc, f"specs/{NAME}.yaml")
        output = proc.stdout + proc.stderr
        assert "outside the repository" in output
        assert "s3cr3t" not in output and str(outside) not in output


def test_spec_folder_symlinked_outside_lists_nothing(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "private-name.yaml").write_text("kind: x\n", encoding="utf-8")
    (repo / "linked").symlink_to(elsewhere)
    proc = bounded("validate", "linked", cwd=repo)
    assert_refused(proc, "linked")
    assert "private-name" not in proc.stdout + proc.stderr


def test_huge_spec_is_refused_on_stat_before_reading(repo: Path) -> None:
    spec = repo / "specs" / f"{NAME}.yaml"
    with spec.open("r+b") as fh:  # sparse: 4 GiB on stat, nothing on disk, OOM if read
        fh.truncate(4 << 30)
    for command in ("validate", "plan"):
        proc = bounded(command, cwd=repo)
        assert_refused(proc, f"specs/{NAME}.yaml")
        assert "larger than 1024 KiB" in proc.stdout + proc.stderr


def test_spec_symlinked_to_dev_zero_is_refused(repo: Path) -> None:
    spec = repo / "specs" / f"{NAME}.yaml"
    spec.unlink()
    spec.symlink_to("/dev/zero")
    proc = bounded("validate", cwd=repo)
    assert_refused(proc, f"specs/{NAME}.yaml")


def test_spec_symlinked_inside_the_repository_is_read(repo: Path) -> None:
    spec = repo / "specs" / f"{NAME}.yaml"
    (repo / "shared.yaml").write_bytes(spec.read_bytes())
    spec.unlink()
    spec.symlink_to("../shared.yaml")
    proc = bounded("validate", "specs", cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_server_state_file_symlinked_to_dev_zero_is_not_read(repo: Path) -> None:
    # .mllc/ is ignored by the scaffolded .gitignore, but a pull request owns that file too.
    spec = fast_spec()
    spec["environments"] = {"staging": {"target": "local", "model": "latest", "port": 18481}}
    (repo / "specs" / f"{NAME}.yaml").write_text(dump_spec(spec), encoding="utf-8")
    mllc("compile", cwd=repo)
    state = repo / ".mllc" / "serve" / NAME / "staging"
    state.mkdir(parents=True)
    (state / "server-1.json").symlink_to("/dev/zero")
    proc = bounded("plan", cwd=repo)
    assert proc.returncode in (0, 2), proc.stdout + proc.stderr
    assert "staging" in proc.stdout


def _config_cache_dir(repo: Path, cache: Path) -> None:
    with (repo / ".dvc" / "config").open("a", encoding="utf-8") as fh:
        fh.write(f"[cache]\n    dir = {cache}\n")


def test_cache_dir_set_to_the_root_does_not_open_the_file_system(
    repo: Path, tmp_path: Path
) -> None:
    # .dvc/config is the pull request's: "cache.dir = /" must not make / "the DVC cache".
    csv_repo(repo)
    _config_cache_dir(repo, Path("/"))
    secret = tmp_path / "secret.csv"
    secret.write_text("a,target\n1,top-secret\n", encoding="utf-8")
    (repo / "data" / "iris.csv").symlink_to(secret)
    proc = bounded("plan", "--json", cwd=repo)
    assert_refused(proc, "data/iris.csv")
    assert hashlib.md5(secret.read_bytes()).hexdigest() not in proc.stdout + proc.stderr


def test_data_linked_to_an_object_of_an_outside_cache_is_hashed(repo: Path, tmp_path: Path) -> None:
    # cache.type = symlink: the workspace file is a link to the object in the cache.
    csv_repo(repo)
    content = b"a,target\n1,x\n"
    digest = hashlib.md5(content).hexdigest()
    cache = tmp_path / "shared-cache"
    obj = cache / "files" / "md5" / digest[:2] / digest[2:]
    obj.parent.mkdir(parents=True)
    obj.write_bytes(content)
    os.utime(obj, ns=(1_000_000_000, 1_000_000_000))
    _config_cache_dir(repo, cache)
    (repo / "data" / "iris.csv").symlink_to(obj)
    proc = bounded("plan", cwd=repo)
    assert proc.returncode in (0, 2), proc.stdout + proc.stderr
    assert digest in (repo / ".mllc" / "cache" / "md5.json").read_text(encoding="utf-8")


def test_compile_check_does_not_read_a_generated_file_linked_outside(
    repo: Path, tmp_path: Path
) -> None:
    # The outside copy is exactly what compile generates: only reading it could say so.
    generated = repo / PIPE / "dvc.yaml"
    outside = tmp_path / "copy.yaml"
    outside.write_bytes(generated.read_bytes())
    generated.unlink()
    generated.symlink_to(outside)
    for command in (["compile", "--check"], ["compile"]):
        proc = bounded(*command, cwd=repo)
        assert_refused(proc, f"{PIPE}/dvc.yaml")
    assert generated.is_symlink() and outside.read_bytes()  # neither replaced nor written


def test_refused_files_of_every_lifecycle_are_reported_at_once(repo: Path) -> None:
    spec = fast_spec()
    spec["metadata"]["name"] = "other"
    (repo / "specs" / "other.yaml").write_text(dump_spec(spec), encoding="utf-8")
    mllc("compile", cwd=repo)
    lock = f"schema: '2.0'\nanchors:\n{alias_bomb('  ')}stages: {{}}\n"
    for name in (NAME, "other"):
        (repo / "pipelines" / name / "dvc.lock").write_text(lock, encoding="utf-8")
    proc = bounded("plan", cwd=repo)
    assert_refused(proc, f"{PIPE}/dvc.lock")
    assert "pipelines/other/dvc.lock:" in proc.stderr


def test_config_symlinked_outside_is_refused(repo: Path, tmp_path: Path) -> None:
    # An allow-list from outside the repository would let a pull request pick the code.
    outside = tmp_path / "mllc.toml"
    outside.write_text('[estimators]\nclassification = ["evil.Model"]\n', encoding="utf-8")
    (repo / "mllc.toml").symlink_to(outside)
    spec = fast_spec()
    spec["models"]["logreg"]["estimator"] = "evil.Model"
    (repo / "specs" / f"{NAME}.yaml").write_text(dump_spec(spec), encoding="utf-8")
    proc = bounded("validate", cwd=repo)
    assert_refused(proc, "mllc.toml")
    assert "outside the repository" in proc.stdout + proc.stderr


def test_monitoring_report_symlinked_to_dev_zero_is_refused(repo: Path) -> None:
    spec = fast_spec()
    spec["environments"] = {"staging": {"target": "local", "model": "latest", "port": 18482}}
    assert spec.get("monitoring"), "the iris spec monitors its environments"
    (repo / "specs" / f"{NAME}.yaml").write_text(dump_spec(spec), encoding="utf-8")
    mllc("compile", cwd=repo)
    folder = repo / "monitoring" / NAME / "staging"
    folder.mkdir(parents=True)
    (folder / "report.json").symlink_to("/dev/zero")
    proc = bounded("plan", cwd=repo)
    assert_refused(proc, f"monitoring/{NAME}/staging/report.json")


def test_every_refused_file_of_one_lifecycle_is_reported_at_once(repo: Path) -> None:
    (repo / PIPE / "params.yaml").write_text(f"{alias_bomb()}x: *l9\n", encoding="utf-8")
    lock = f"schema: '2.0'\nanchors:\n{alias_bomb('  ')}stages: {{}}\n"
    (repo / PIPE / "dvc.lock").write_text(lock, encoding="utf-8")
    (repo / PIPE / "dvc.yaml").unlink()
    (repo / PIPE / "dvc.yaml").symlink_to("/dev/zero")
    proc = bounded("plan", cwd=repo)
    assert_refused(proc, f"{PIPE}/dvc.lock")
    for name in ("params.yaml", "dvc.yaml"):
        assert f"{PIPE}/{name}:" in proc.stderr, proc.stderr
