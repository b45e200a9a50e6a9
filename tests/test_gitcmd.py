"""mllc.gitcmd, the one git runner, on real repositories: how a failure reads, what a
git that cannot be started raises for each caller, and the fallback identity."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import isolate_git

from mllc import gitcmd
from mllc.errors import MllcError
from mllc.ops import diff as semdiff
from mllc.ops import init as scaffold
from mllc.registry import store


@pytest.fixture(autouse=True)
def _isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No developer config, and no identity at all (none guessed from the host either):
    # what a fresh CI runner has.
    isolate_git(tmp_path, monkeypatch, config="[user]\n\tuseConfigOnly = true\n")
    for name in gitcmd.FALLBACK:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("EMAIL", raising=False)
    gitcmd.identity_env.cache_clear()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


def _stderr_of(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    return proc.stderr.strip()


def test_run_reports_the_exit_status_and_output_raises_with_git_s_words(repo: Path) -> None:
    proc = gitcmd.run(repo, "show", "no-such-ref")
    assert proc.returncode != 0 and proc.stdout == b""
    said = _stderr_of(repo, "show", "no-such-ref")
    assert len(said.splitlines()) > 1  # git explains itself over several lines here
    with pytest.raises(MllcError) as whole:
        gitcmd.output(repo, "show", "no-such-ref")
    assert str(whole.value) == f"git show failed: {said}"
    with pytest.raises(MllcError) as last:
        gitcmd.output(repo, "show", "no-such-ref", last_line=True)
    assert str(last.value) == f"git show failed: {said.splitlines()[-1]}"


def test_stdin_and_env_reach_git(repo: Path, tmp_path: Path) -> None:
    blob = gitcmd.git(repo, "hash-object", "-w", "--stdin", stdin=b"hello\n")
    assert gitcmd.output(repo, "cat-file", "blob", blob) == b"hello\n"
    index = tmp_path / "other-index"
    gitcmd.git(
        repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},a.txt",
        env={"GIT_INDEX_FILE": str(index)},
    )  # fmt: skip
    assert index.exists()
    assert gitcmd.git(repo, "ls-files") == ""  # the repository's own index is untouched


def test_commits_get_the_fallback_identity_only_when_git_has_none(repo: Path) -> None:
    assert gitcmd.head(repo) is None
    tree = gitcmd.git(repo, "write-tree")
    commit = gitcmd.git(repo, "commit-tree", tree, "-m", "first")
    gitcmd.git(repo, "update-ref", "HEAD", commit)
    assert gitcmd.head(repo) == commit
    assert gitcmd.git(repo, "log", "-1", "--format=%an <%ae>") == "mllc <mllc@localhost>"

    gitcmd.git(repo, "config", "user.name", "Someone")
    gitcmd.git(repo, "config", "user.email", "someone@example.com")
    gitcmd.identity_env.cache_clear()
    assert gitcmd.identity_env(repo) == {}
    second = gitcmd.git(repo, "commit-tree", tree, "-p", commit, "-m", "second")
    assert gitcmd.git(repo, "log", "-1", "--format=%an <%ae>", second) == (
        "Someone <someone@example.com>"
    )


def test_a_git_that_cannot_be_started(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each caller's error when git is not on PATH: raised at once, in its own words."""
    nowhere = tmp_path / "no-programs"
    nowhere.mkdir()
    monkeypatch.setenv("PATH", str(nowhere))
    with pytest.raises(FileNotFoundError):
        gitcmd.run(repo, "status")
    with pytest.raises(store.RegistryError, match=r"^git is not installed \(or not on PATH\)$"):
        store.list_versions(repo)
    with pytest.raises(MllcError, match=r"^git is not installed \(or not on PATH\)$"):
        gitcmd.output(repo, "status", missing=MllcError)
    with pytest.raises(MllcError, match=r"^not a Git commit: 'HEAD'$"):
        semdiff.read_specs(repo, "HEAD", ["specs"])
    with pytest.raises(MllcError, match=r"^cannot run 'git': No such file or directory$"):
        scaffold.scaffold(tmp_path / "new")


def test_split_batch_reads_each_object_of_a_real_cat_file_batch(repo: Path) -> None:
    blobs = []
    for content in (b"one\n", b"", b"line\nwith\nnewlines and \x00 bytes"):
        proc = gitcmd.run(repo, "hash-object", "-w", "--stdin", stdin=content)
        blobs.append(proc.stdout.decode().strip())
    missing = "0" * 40
    objects = [blobs[0], missing, blobs[1], blobs[2]]
    out = gitcmd.output(
        repo, "cat-file", "--batch", stdin="".join(f"{o}\n" for o in objects).encode()
    )
    assert gitcmd.split_batch(out, 4) == [
        b"one\n",
        None,
        b"",
        b"line\nwith\nnewlines and \x00 bytes",
    ]
    assert gitcmd.split_batch(out[:10], 2) == [None, None]  # cut short: nothing invented


def test_head_from_files_agrees_with_git_or_says_none(tmp_path: Path) -> None:
    """HEAD's commit id from .git's files, as `git rev-parse HEAD` gives it: on a branch
    (loose ref, then packed), detached; None when unborn or from a worktree's .git file."""
    repo = tmp_path / "r"
    repo.mkdir()

    def git(*args: str) -> str:
        who = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
        proc = subprocess.run(["git", *who, *args], cwd=repo, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    git("init", "-q", "-b", "main")
    assert gitcmd.head_from_files(repo) is None  # unborn: no commit yet
    (repo / "a").write_text("1", encoding="utf-8")
    git("add", "a")
    git("commit", "-qm", "one")
    assert gitcmd.head_from_files(repo) == git("rev-parse", "HEAD")
    git("pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert gitcmd.head_from_files(repo) == git("rev-parse", "HEAD")
    first = git("rev-parse", "HEAD")
    (repo / "a").write_text("2", encoding="utf-8")
    git("commit", "-qam", "two")  # a loose ref again, newer than the packed one
    assert gitcmd.head_from_files(repo) == git("rev-parse", "HEAD") != first
    git("checkout", "-q", "--detach", first)
    assert gitcmd.head_from_files(repo) == first
    git("worktree", "add", "-q", "--detach", str(tmp_path / "wt"), "main")
    assert gitcmd.head_from_files(tmp_path / "wt") is None  # .git is a file: ask git
