"""The registry as Git tags in GTO's format, checked with real Git and the real ``gto`` CLI.

``gto show`` / ``gto history`` reading what mllc wrote is the proof that both tools
see the same registry; GTO-written tags (assign, deregister) read back by mllc prove
the other direction.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import isolate_git
from hypothesis import given
from hypothesis import strategies as st

from mllc import semver
from mllc.errors import MllcError
from mllc.gitcmd import identity_env
from mllc.registry import (
    assign,
    assignments,
    find_by_md5,
    in_cache,
    list_versions,
    next_version,
    register,
    store,
    tags,
)

MD5_A = "a" * 32
MD5_B = "0123456789abcdef" * 2
MD5_C = "c" * 32

_GTO = Path(sys.executable).parent / "gto"
GTO = str(_GTO) if _GTO.exists() else shutil.which("gto")


@pytest.fixture(autouse=True)
def _isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_git(tmp_path, monkeypatch)


def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], input=stdin, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def tag_names(repo: Path) -> list[str]:
    return sorted(git(repo, "tag", "--list").splitlines())


def at(monkeypatch: pytest.MonkeyPatch, second: int) -> None:
    """Pin the tagger date: GTO orders events by tag date, to the second."""
    monkeypatch.setenv("GIT_COMMITTER_DATE", f"@{1_700_000_000 + second} +0000")


def gto(repo: Path, *args: str) -> Any:
    if GTO is None:
        pytest.skip("gto is not installed (pip install -e '.[dev]')")
    proc = subprocess.run([GTO, *args], cwd=repo, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if "--json" in args else proc.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(root, "initial")
    return root


# ------------------------------------------------------------------ versions


@pytest.mark.slow  # runs the gto / dvc CLI
def test_register_two_versions_and_gto_reads_them(repo: Path) -> None:
    c1 = commit(repo, "train 1")
    v1 = register(repo, "iris", c1, MD5_A, {"accuracy": 0.9}, {"spec": "specs/iris.yaml"})
    c2 = commit(repo, "train 2")
    v2 = register(repo, "iris", "HEAD", MD5_B, {"accuracy": 0.95}, {"params": {"C": 1.0}})

    assert (v1.version, v1.commit, v1.model_md5) == ("v1.0.0", c1, MD5_A)
    assert (v2.version, v2.commit, v2.model_md5) == ("v1.1.0", c2, MD5_B)
    assert v2.metrics == {"accuracy": 0.95}
    assert list_versions(repo, "iris") == [v1, v2]
    assert list_versions(repo, "iris")[-1] == v2  # the greatest version: GTO's "latest"
    assert tag_names(repo) == ["iris@v1.0.0", "iris@v1.1.0"]
    # The tag points at the given commit, not at HEAD.
    assert git(repo, "rev-parse", "iris@v1.0.0^{commit}") == c1

    # The message: GTO's first line, a blank line, sorted JSON with the lineage.
    body = git(repo, "for-each-ref", "--format=%(contents)", "refs/tags/iris@v1.0.0")
    first, blank, *rest = body.splitlines()
    assert first == "Registering artifact iris version v1.0.0"
    assert blank == ""
    payload = json.loads("\n".join(rest))
    assert "\n".join(rest) == json.dumps(payload, sort_keys=True, indent=2)
    assert payload["model_md5"] == MD5_A
    assert payload["lineage"] == {"spec": "specs/iris.yaml"}
    assert payload["metrics"] == {"accuracy": 0.9}
    assert payload["mllc_version"]
    # mllc reads the same document back: its parser, and the version it lists.
    assert tags.parse_message(body) == (first, payload)
    read = list_versions(repo, "iris")[0]
    assert (read.model_md5, read.metrics) == (payload["model_md5"], payload["metrics"])

    # GTO reads the same registry.
    shown = gto(repo, "show", "--json")
    assert shown["iris"]["version"] == "v1.1.0"
    assert shown["iris"]["registered"] is True
    versions = gto(repo, "show", "iris", "--json")
    assert {(v["version"], v["commit_hexsha"]) for v in versions} == {
        ("v1.0.0", c1),
        ("v1.1.0", c2),
    }
    messages = {v["version"]: v["registrations"][0]["message"] for v in versions}
    assert messages["v1.1.0"].startswith("Registering artifact iris version v1.1.0\n\n{")


def test_register_is_idempotent_by_model_hash(repo: Path) -> None:
    c1 = commit(repo, "train")
    first = register(repo, "iris", c1, MD5_A, {"accuracy": 0.9}, {})
    later = commit(repo, "unrelated change, same model")
    again = register(repo, "iris", later, MD5_A, {"accuracy": 0.1}, {"other": True})
    assert again == first
    assert again.commit == c1
    assert tag_names(repo) == ["iris@v1.0.0"]
    assert find_by_md5(repo, "iris", MD5_A) == first
    assert find_by_md5(repo, "iris", MD5_B) is None
    # The same model under another lifecycle is another registration.
    other = register(repo, "wine", c1, MD5_A, {}, {})
    assert (other.name, other.version) == ("wine", "v1.0.0")
    assert [v.name for v in list_versions(repo)] == ["iris", "wine"]


def test_versions_stay_monotonic_past_a_hand_made_tag(repo: Path) -> None:
    c1 = commit(repo, "one")
    register(repo, "iris", c1, MD5_A, {}, {})
    c2 = commit(repo, "two")
    git(repo, "tag", "-a", "-m", "by hand", "iris@v3.0.0", c2)  # no lineage: not listed
    c3 = commit(repo, "three")
    v = register(repo, "iris", c3, MD5_B, {}, {})
    assert v.version == "v3.1.0"
    assert [x.version for x in list_versions(repo, "iris")] == ["v1.0.0", "v3.1.0"]
    # A lightweight tag (ignored by GTO) still takes its name: never reused.
    git(repo, "tag", "iris@v9.0.0", c3)
    c4 = commit(repo, "four")
    assert register(repo, "iris", c4, MD5_C, {}, {}).version == "v9.1.0"


def test_next_version_examples() -> None:
    assert next_version([]) == "v1.0.0"
    assert next_version(["v1.0.0"]) == "v1.1.0"
    assert next_version(["v1.0.0", "v1.1.0"]) == "v1.2.0"
    assert next_version(["v1.9.0", "v1.10.0", "v1.2.0"]) == "v1.11.0"  # semver, not text
    assert next_version(["v3.0.0", "v1.4.0"]) == "v3.1.0"
    assert next_version(["v0.0.1"]) == "v0.1.0"  # GTO's own first version
    assert next_version(["v2.0.0-rc.1"]) == "v2.1.0"
    assert next_version(["latest", "v1", "1.2.0", "v01.0.0"]) == "v1.0.0"
    assert sorted(["v1.0.0", "v1.0.0-rc.1", "v1.0.0-alpha", "v0.9.0"], key=semver.sort_key) == [
        "v0.9.0",
        "v1.0.0-alpha",
        "v1.0.0-rc.1",
        "v1.0.0",
    ]


_versions = st.builds(lambda a, b, c: f"v{a}.{b}.{c}", *(st.integers(0, 30) for _ in range(3)))


@given(st.lists(_versions, max_size=8))
def test_next_version_is_greater_than_every_existing(existing: list[str]) -> None:
    new = next_version(existing)
    assert all(semver.sort_key(new) > semver.sort_key(v) for v in existing)
    assert new not in existing
    assert next_version([*existing, new]) != new  # monotonic: the next one moves on


@pytest.mark.slow  # runs the gto / dvc CLI
def test_foreign_and_malformed_tags_are_skipped(repo: Path) -> None:
    c1 = commit(repo, "one")
    register(repo, "iris", c1, MD5_A, {}, {})
    junk = commit(repo, "hand-made tags")
    first = "Registering artifact iris version {}\n\n"
    hand_made = {
        "iris@something": "foreign",
        "iris@v1.0": "not semver",
        "iris@v2.0.0": first.format("v2.0.0") + "{not json",
        "iris@v2.1.0": first.format("v2.1.0") + '{"metrics": {}}',  # no model hash
        "iris@v2.2.0": first.format("v2.2.0") + '{"model_md5": "../../../etc/passwd"}',
        "iris@v2.3.0": first.format("v2.3.0") + "[" * 5000,
        "iris@v2.4.0": first.format("v2.4.0") + '["a list"]',
        "Iris@v2.4.1": first.format("v2.4.1") + json.dumps({"model_md5": MD5_B}),
        "release-1": "unrelated",
    }
    for name, message in hand_made.items():
        git(repo, "tag", "-a", "--cleanup=verbatim", "-F", "-", name, junk, stdin=message)
    # GTO accepts stage names that are not DNS labels; history reads them too.
    git(repo, "tag", "-a", "-m", "by hand", "iris#Not_A_Label#1", c1)

    assert [v.version for v in list_versions(repo)] == ["v1.0.0"]
    assert assignments(repo, "iris")["Not_A_Label"][0].version == "v1.0.0"
    # Every version name is taken, even those of malformed tags.
    c2 = commit(repo, "two")
    assert register(repo, "iris", c2, MD5_B, {}, {}).version == "v2.5.0"
    assert gto(repo, "show", "--json")["iris"]["version"] == "v2.5.0"

    # A version tag on a tree crashes `gto show` (GTO 1.10.1: '_pygit2.Tree' object has
    # no attribute 'commit_time'); mllc skips it and only keeps its name out of reach.
    tree = git(repo, "rev-parse", "HEAD^{tree}")
    git(repo, "tag", "-a", "-m", first.format("v3.0.0") + "{}", "iris@v3.0.0", tree)
    assert [v.version for v in list_versions(repo)] == ["v1.0.0", "v2.5.0"]
    assert register(repo, "iris", commit(repo, "three"), MD5_C, {}, {}).version == "v3.1.0"


def test_reading_is_one_git_process(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(12):
        register(repo, "iris", commit(repo, f"c{i}"), f"{i:032x}", {"i": i}, {})
    calls: list[list[str]] = []
    real_run = subprocess.run

    def counting_run(args: list[str], **kwargs: Any) -> Any:
        calls.append(args)
        return real_run(args, **kwargs)

    monkeypatch.setattr(subprocess, "run", counting_run)  # store calls subprocess.run
    assert len(list_versions(repo, "iris")) == 12
    assert len(calls) == 1 and "for-each-ref" in calls[0]


def test_versions_and_tags_read_the_tags_once(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a plan binds to: the versions of list_versions, and every tag (annotated,
    lightweight, foreign, on a tree) with the object it names, from one git process."""
    register(repo, "iris", commit(repo, "one"), MD5_A, {}, {})
    register(repo, "churn", commit(repo, "two"), MD5_B, {}, {})
    git(repo, "tag", "light")
    git(repo, "tag", "-a", "-m", "by hand", "release-1")
    git(repo, "tag", "on-a-tree", git(repo, "rev-parse", "HEAD^{tree}"))
    listing = git(repo, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/tags/")
    expected_tags = dict(line.rsplit(" ", 1) for line in listing.splitlines())
    expected_versions = list_versions(repo)
    calls: list[list[str]] = []
    real_run = subprocess.run

    def counting_run(args: list[str], **kwargs: Any) -> Any:
        calls.append(args)
        return real_run(args, **kwargs)

    monkeypatch.setattr(subprocess, "run", counting_run)
    identity_env.cache_clear()  # register() looked the identity up; a read must not
    versions, tag_objects = store.versions_and_tags(repo)
    assert versions == expected_versions
    assert [(v.name, v.version) for v in versions] == [("churn", "v1.0.0"), ("iris", "v1.0.0")]
    assert tag_objects == expected_tags and list(tag_objects) == sorted(expected_tags)
    assert len(calls) == 1 and "for-each-ref" in calls[0]  # no `git var`: reads need no identity


def test_parse_for_each_ref_keeps_fields_apart() -> None:
    fields = [
        "refs/tags/iris@v1.0.0",
        "tag",
        "1" * 40,
        "commit",
        "2" * 40,
        "2024-01-01T00:00:00+00:00",
    ]
    good = "\0".join([*fields, "first\n\n{}\nwith \x01 and \0 inside\n"]) + "\0\x01\0\n"
    light = "\0".join(["refs/tags/iris@v2.0.0", "commit", "3" * 40, "", "", "d", ""]) + "\0\x01\0\n"
    records = tags.parse_for_each_ref(good + light + "garbage")
    assert [(r.tag, r.annotated, r.commit, r.oid) for r in records] == [
        ("iris@v1.0.0", True, "2" * 40, "1" * 40),
        ("iris@v2.0.0", False, "3" * 40, "3" * 40),
    ]
    assert records[0].message.endswith("\0 inside\n")


# --------------------------------------------------------------- assignments


@pytest.mark.slow  # runs the gto / dvc CLI
def test_assign_writes_gto_stage_tags(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at(monkeypatch, 0)
    c1 = commit(repo, "one")
    register(repo, "iris", c1, MD5_A, {}, {})
    at(monkeypatch, 1)
    c2 = commit(repo, "two")
    register(repo, "iris", c2, MD5_B, {}, {})

    at(monkeypatch, 10)
    a1 = assign(repo, "iris", "v1.0.0", "staging", {"reason": "gates passed"})
    at(monkeypatch, 11)
    assign(repo, "iris", "v1.0.0", "production", {})
    at(monkeypatch, 12)
    assign(repo, "iris", "v1.1.0", "staging", {})
    assert (a1.tag, a1.counter, a1.commit, a1.extra) == (
        "iris#staging#1",
        1,
        c1,
        {"reason": "gates passed"},
    )
    assert git(repo, "tag", "-l", "-n1", "iris#staging#1").split(None, 1)[1] == (
        "Assigning stage staging to artifact iris version v1.0.0"
    )
    # Idempotent: staging already runs v1.1.0.
    assert assign(repo, "iris", "v1.1.0", "staging", {}).tag == "iris#staging#3"
    assert [t for t in tag_names(repo) if "#" in t] == [
        "iris#production#2",
        "iris#staging#1",
        "iris#staging#3",
    ]
    assert gto(repo, "show", "--json")["iris"]["stage"] == {
        "production": "v1.0.0",
        "staging": "v1.1.0",
    }

    # A rollback is a new assignment of the older version; GTO follows it.
    at(monkeypatch, 13)
    assert assign(repo, "iris", "v1.0.0", "staging", {}).tag == "iris#staging#4"
    assert gto(repo, "show", "--json")["iris"]["stage"]["staging"] == "v1.0.0"

    # GTO's own assignment continues the shared counter, and we continue after it.
    gto(repo, "assign", "iris", "--version", "v1.1.0", "--stage", "qa")
    assert "iris#qa#5" in tag_names(repo)
    assert assign(repo, "iris", "v1.1.0", "production", {}).tag == "iris#production#6"

    # GTO's unassignment is read as such, and assigning again is a new tag.
    monkeypatch.delenv("GIT_COMMITTER_DATE")  # GTO dates its tags now; so must we
    gto(repo, "deprecate", "iris", "v1.1.0", "qa")
    assert assign(repo, "iris", "v1.1.0", "qa", {}).tag == "iris#qa#8"
    assert gto(repo, "show", "--json")["iris"]["stage"]["qa"] == "v1.1.0"

    history = assignments(repo, "iris")
    assert [a.version for a in history["staging"]] == ["v1.0.0", "v1.1.0", "v1.0.0"]
    assert [a.version for a in history["production"]] == ["v1.0.0", "v1.1.0"]
    assert [(a.tag, a.unassign) for a in history["qa"]] == [
        ("iris#qa#5", False),
        ("iris#qa!#7", True),
        ("iris#qa#8", False),
    ]
    assert history["staging"][0].extra == {"reason": "gates passed"}

    events = gto(repo, "history", "iris", "--json")
    assigned = {e["ref"]: e["version"] for e in events if e["event"] == "assignment"}
    assert assigned["iris#staging#1"] == "v1.0.0"
    assert assigned["iris#production#6"] == "v1.1.0"


@pytest.mark.slow  # runs the gto / dvc CLI
def test_quick_reassignments_agree_with_gto(repo: Path) -> None:
    """Unpinned clock: assignments within one second must still read in order in GTO."""
    register(repo, "iris", commit(repo, "one"), MD5_A, {}, {})
    register(repo, "iris", commit(repo, "two"), MD5_B, {}, {})
    for version in ("v1.1.0", "v1.0.0", "v1.1.0"):
        assign(repo, "iris", version, "staging", {})
        assert gto(repo, "show", "--json")["iris"]["stage"]["staging"] == version
    assert [a.version for a in assignments(repo, "iris")["staging"]] == [
        "v1.1.0",
        "v1.0.0",
        "v1.1.0",
    ]


def test_assign_refuses_bad_input(repo: Path) -> None:
    register(repo, "iris", commit(repo, "one"), MD5_A, {}, {})
    with pytest.raises(MllcError, match="not registered"):
        assign(repo, "iris", "v2.0.0", "staging", {})
    with pytest.raises(MllcError, match="invalid environment"):
        assign(repo, "iris", "v1.0.0", "Prod", {})
    with pytest.raises(MllcError, match="invalid environment"):
        assign(repo, "iris", "v1.0.0", "prod\n", {})
    with pytest.raises(MllcError, match="may not set version"):
        assign(repo, "iris", "v1.0.0", "staging", {"version": "v9.9.9"})
    assert [t for t in tag_names(repo) if "#" in t] == []


# ----------------------------------------------------------- cache and errors


@pytest.mark.slow  # runs the gto / dvc CLI
def test_in_cache_follows_the_dvc3_layout(repo: Path) -> None:
    # Let real DVC put a file in its cache, then find it where we look.
    dvc = Path(sys.executable).parent / "dvc"
    if not dvc.exists():
        pytest.skip("dvc is not installed")
    subprocess.run([str(dvc), "init", "-q"], cwd=repo, check=True)
    (repo / "model.joblib").write_bytes(b"a model")
    subprocess.run([str(dvc), "add", "-q", "model.joblib"], cwd=repo, check=True)
    md5 = (repo / "model.joblib.dvc").read_text().split("md5: ")[1].split()[0]
    git(repo, "add", "-A")
    c1 = commit(repo, "model")
    cached = register(repo, "iris", c1, md5, {}, {})
    missing = register(repo, "wine", c1, MD5_A, {}, {})
    assert cached.in_cache is True
    assert missing.in_cache is False
    assert (repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).is_file()
    assert in_cache(repo, "../../x") is False


def test_register_refuses_bad_input_cleanly(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(MllcError, match="does not exist"):
        register(repo, "iris", "f" * 40, MD5_A, {}, {})
    with pytest.raises(MllcError, match="does not exist"):
        register(repo, "iris", "no-such-branch", MD5_A, {}, {})
    with pytest.raises(MllcError, match="not a commit"):
        register(repo, "iris", "--all", MD5_A, {}, {})
    with pytest.raises(MllcError, match="invalid name"):
        register(repo, "Iris", "HEAD", MD5_A, {}, {})
    with pytest.raises(MllcError, match="invalid name"):
        register(repo, "iris\n", "HEAD", MD5_A, {}, {})
    with pytest.raises(MllcError, match="invalid model hash"):
        register(repo, "iris", "HEAD", "abc", {}, {})
    with pytest.raises(MllcError, match="JSON"):
        register(repo, "iris", "HEAD", MD5_A, {"accuracy": float("nan")}, {})
    not_a_repo = tmp_path / "not-a-repo"
    not_a_repo.mkdir()
    with pytest.raises(MllcError, match="cannot read the registry"):
        list_versions(not_a_repo)
    assert tag_names(repo) == []


def test_one_commit_carries_one_model(repo: Path) -> None:
    c1 = commit(repo, "one")
    register(repo, "iris", c1, MD5_A, {}, {})
    with pytest.raises(MllcError, match=r"already carries iris v1\.0\.0"):
        register(repo, "iris", c1, MD5_B, {}, {})
    assert tag_names(repo) == ["iris@v1.0.0"]


@pytest.mark.slow  # runs the gto / dvc CLI
def test_deregistered_versions_are_hidden_and_not_reregistered(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, 0)  # in the past, so GTO's deregistration (dated now) comes later
    c1 = commit(repo, "one")
    register(repo, "iris", c1, MD5_A, {}, {})
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    c2 = commit(repo, "two")
    register(repo, "iris", c2, MD5_B, {}, {})
    gto(repo, "deprecate", "iris", "v1.0.0")  # GTO writes the deregistration iris@v1.0.0!
    assert "iris@v1.0.0!" in tag_names(repo)
    assert [v["version"] for v in gto(repo, "show", "iris", "--json")] == ["v1.1.0"]
    assert [v.version for v in list_versions(repo, "iris")] == ["v1.1.0"]
    with pytest.raises(MllcError, match="deregistered"):
        register(repo, "iris", commit(repo, "three"), MD5_A, {}, {})
    assert register(repo, "iris", "HEAD", MD5_C, {}, {}).version == "v1.2.0"


# ---------------------------------------------------------------- atomicity


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_killed_tag_writes_leave_all_or_nothing(repo: Path) -> None:
    """SIGKILL `git tag` at random moments: each tag is complete or absent, never partial."""
    head = git(repo, "rev-parse", "HEAD")
    big = {"model_md5": MD5_A, "lineage": {"blob": "x" * 300_000}, "metrics": {}}
    rng = random.Random(0)
    for i in range(30):
        tag = f"iris@v{i}.0.0"
        message = tags.format_message(tags.registration_first_line("iris", f"v{i}.0.0"), big)
        proc = subprocess.Popen(
            ["git", "-C", str(repo), "tag", "-a", "--cleanup=verbatim", "-F", "-", tag, head],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdin is not None
        try:
            proc.stdin.write(message.encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        time.sleep(rng.uniform(0, 0.01))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    records = {r.tag: r for r in store._read_tags(repo)}
    for tag, record in records.items():
        parsed = tags.parse_message(record.message)
        assert parsed is not None and parsed[1] == big, tag
    # Every surviving tag is a complete registration.
    assert {v.version for v in list_versions(repo, "iris")} == {t.split("@")[1] for t in records}


def test_stale_ref_lock_is_reported(repo: Path) -> None:
    """What a SIGKILL can leave: `<ref>.lock`. The error names it; nothing is written."""
    c1 = commit(repo, "one")
    lock = repo / ".git" / "refs" / "tags" / "iris@v1.0.0.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("")
    with pytest.raises(MllcError, match=r"remove .*iris@v1\.0\.0\.lock"):
        register(repo, "iris", c1, MD5_A, {}, {})
    assert tag_names(repo) == []
    lock.unlink()
    assert register(repo, "iris", c1, MD5_A, {}, {}).version == "v1.0.0"


def test_the_cache_is_found_where_dvc_config_puts_it(tmp_path: Path) -> None:
    """`cache.dir` in .dvc/config moves DVC's cache: the registry and the local target
    look there too (not only in .dvc/cache)."""
    from mllc.registry import in_cache
    from mllc.targets.local import model_file

    md5 = "0123456789abcdef0123456789abcdef"
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("[cache]\n    dir = ../shared-cache\n")
    obj = tmp_path / "shared-cache" / "files" / "md5" / md5[:2] / md5[2:]
    assert not in_cache(tmp_path, md5)
    obj.parent.mkdir(parents=True)
    obj.write_bytes(b"model")
    assert in_cache(tmp_path, md5)
    assert model_file(tmp_path, md5).resolve() == obj.resolve()
