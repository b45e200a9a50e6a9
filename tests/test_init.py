"""`mllc init` with real Git and real DVC: creates what is missing, never overwrites."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


def init(directory: Path | str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "mllc", "init", str(directory)], cwd)


def git(*args: str, cwd: Path) -> str:
    proc = run(["git", *args], cwd)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_init_empty_folder(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    proc = init(repo, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "created  Git repository (git init)",
        "created  DVC project (dvc init)",
        "created  specs/iris.yaml",
        "created  .gitignore",
    ]
    assert (repo / ".git").is_dir()
    assert (repo / ".dvc").is_dir() and (repo / ".dvc" / "config").is_file()
    assert git("rev-parse", "--show-toplevel", cwd=repo) == str(repo.resolve())
    spec = (repo / "specs" / "iris.yaml").read_text(encoding="utf-8")
    assert "kind: Lifecycle" in spec and "mllc explain" in spec  # the commented example
    assert (repo / ".gitignore").read_text(encoding="utf-8") == "/.mllc/\n"

    check = run([sys.executable, "-m", "mllc", "validate"], repo)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stderr == "1 spec valid\n"


def test_init_twice_changes_nothing(tmp_path: Path) -> None:
    assert init(tmp_path, tmp_path).returncode == 0
    before = snapshot(tmp_path)
    again = init(tmp_path, tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        "kept     Git repository (exists)",
        "kept     DVC project (exists)",
        "kept     specs/ (already holds specs)",
    ]
    assert snapshot(tmp_path) == before


def test_existing_spec_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    mine = "# my own spec, work in progress\napiVersion: mllc/v1\n"
    (tmp_path / "specs" / "iris.yaml").write_text(mine, encoding="utf-8")
    (tmp_path / ".gitignore").write_text("/data/raw\n", encoding="utf-8")
    proc = init(tmp_path, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "kept     specs/ (already holds specs)" in proc.stdout.splitlines()
    assert "updated  .gitignore" in proc.stdout.splitlines()
    assert (tmp_path / "specs" / "iris.yaml").read_text(encoding="utf-8") == mine
    gitignore = (tmp_path / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert gitignore[0] == "/data/raw"
    assert [line for line in gitignore[1:] if line] == ["/.mllc/"]


def test_other_specs_mean_no_example(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "churn.yml").write_text("# mine\n", encoding="utf-8")
    assert init(tmp_path, tmp_path).returncode == 0
    assert sorted(p.name for p in (tmp_path / "specs").iterdir()) == ["churn.yml"]


def test_init_in_existing_git_repo_keeps_it(tmp_path: Path) -> None:
    git("init", "-q", cwd=tmp_path)
    git("config", "mllc.test", "kept", cwd=tmp_path)
    (tmp_path / "README.md").write_text("hello\n", encoding="utf-8")
    git("add", "README.md", cwd=tmp_path)
    git("commit", "-q", "-m", "first", cwd=tmp_path)
    head = git("rev-parse", "HEAD", cwd=tmp_path)
    branch = git("symbolic-ref", "HEAD", cwd=tmp_path)

    proc = init(".", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "kept     Git repository (exists)"
    assert "created  DVC project (dvc init)" in proc.stdout.splitlines()
    assert git("rev-parse", "HEAD", cwd=tmp_path) == head
    assert git("symbolic-ref", "HEAD", cwd=tmp_path) == branch
    assert git("rev-list", "--count", "HEAD", cwd=tmp_path) == "1"
    assert git("config", "mllc.test", cwd=tmp_path) == "kept"
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == "hello\n"
    # The new files can be committed on top of the existing history.
    git("add", "-A", cwd=tmp_path)
    git("commit", "-q", "-m", "mllc init", cwd=tmp_path)
    assert git("rev-list", "--count", "HEAD", cwd=tmp_path) == "2"


def test_init_on_a_file_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x", encoding="utf-8")
    proc = init(target, tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == f"error: {target} is not a directory\n"
    assert not (tmp_path / ".git").exists()


def test_init_in_a_subfolder_of_a_git_repo(tmp_path: Path) -> None:
    git("init", "-q", cwd=tmp_path)
    git("commit", "-q", "--allow-empty", "-m", "first", cwd=tmp_path)
    sub = tmp_path / "ml"
    sub.mkdir()
    proc = init(sub, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:2] == [
        "kept     Git repository (exists)",
        "created  DVC project (dvc init)",
    ]
    assert (sub / ".dvc").is_dir()
    assert not (sub / ".git").exists()
    assert not (tmp_path / ".dvc").exists()
