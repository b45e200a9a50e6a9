"""``mllc verify`` on real repositories: real Git, real DVC, real training.

One repository is built once per session: a spec reading a CSV that apply tracks with
DVC, applied (v1.0.0), then a parameter changed and applied again (v1.1.0). Each test
copies it and tampers with one thing, as someone with write access to the repository or
the machine could: an edited ``dvc.lock``, a replaced file in the DVC cache, a registry
tag moved to another commit, a tag whose lineage was rewritten, an input the cache lost.
Each must fail, exit 1, and name what changed; the untouched repository verifies.

The DVC remote used here is a folder (DVC's "local" remote type): it stands in for any
remote DVC can fetch from (S3, GCS, SSH ...), which this machine does not have.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.helpers_repo import (
    copy_repo,
    dump_spec,
    dvc,
    edit_spec,
    fast_spec,
    git,
    make_fresh_repo,
    mllc,
    mllc_popen,
    status_porcelain,
    tag_message,
)

pytestmark = pytest.mark.slow

SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "schemas" / "verify.v1.json").read_text()
)
NAME = "iris"
CSV = "data/iris.csv"
MODEL = f"pipelines/{NAME}/model.joblib"
LOCK = f"pipelines/{NAME}/dvc.lock"


def _csv_spec() -> str:
    data = fast_spec()
    data["data"]["source"] = {"csv": CSV}
    return dump_spec(data)


def another_split(data: dict[str, Any]) -> None:
    data["data"]["split"] = {**data["data"].get("split", {}), "seed": 7}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two versions, v1.0.0 and v1.1.0, of a lifecycle whose data DVC tracks."""
    from sklearn.datasets import load_iris

    repo = make_fresh_repo(tmp_path_factory.mktemp("verify") / "repo", _csv_spec())
    (repo / "data").mkdir()
    load_iris(as_frame=True).frame.to_csv(repo / CSV, index=False)
    mllc("apply", "--auto-approve", cwd=repo)
    edit_spec(repo, another_split, commit="another split")
    mllc("apply", "--auto-approve", cwd=repo)
    assert git("tag", "--list", cwd=repo).split() == ["iris@v1.0.0", "iris@v1.1.0"]
    return repo


@pytest.fixture
def repo(built: Path, tmp_path: Path) -> Path:
    return copy_repo(built, tmp_path / "repo")


def verify(repo: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    proc = mllc("verify", "--json", *args, cwd=repo, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def only(report: dict[str, Any]) -> dict[str, Any]:
    assert len(report["versions"]) == 1, report
    version: dict[str, Any] = report["versions"][0]
    return version


def findings(version: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["check"], f["subject"]) for f in version["findings"]]


def cache_files(repo: Path) -> dict[str, int]:
    cache = repo / ".dvc" / "cache"
    return {str(p.relative_to(cache)): p.stat().st_size for p in cache.rglob("*") if p.is_file()}


def commit_of(repo: Path, ref: str) -> str:
    return git("rev-parse", f"{ref}^{{commit}}", cwd=repo)


def cache_object(repo: Path, md5: str) -> Path:
    return repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def overwrite(path: Path, data: bytes) -> None:
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    path.write_bytes(data)


def lock_out_md5(text: str, path: str) -> str:
    """The md5 a dvc.lock (or a .dvc file) records for output ``path``."""
    import yaml

    doc = yaml.safe_load(text)
    stages = doc["stages"].values() if "stages" in doc else [doc]
    for stage in stages:
        for out in stage.get("outs", []):
            if out["path"] == path:
                return str(out["md5"])
    raise AssertionError(f"{path} is not an output in the lock")


def retag(repo: Path, tag: str, commit: str, message: str) -> None:
    """Replace ``tag`` with an annotated tag on ``commit`` carrying ``message`` (what
    ``git tag -f`` does; mllc never does it, someone with push access can)."""
    git("tag", "-d", tag, cwd=repo)
    msg = repo.parent / "message.txt"
    msg.write_text(message, encoding="utf-8")
    git("tag", "-a", "--cleanup=verbatim", "-F", str(msg), tag, commit, cwd=repo)


def payload_of(repo: Path, tag: str) -> tuple[str, dict[str, Any]]:
    first, _, rest = tag_message(repo, tag).partition("\n\n")
    payload = json.loads(rest)
    assert isinstance(payload, dict)
    return first, payload


def message(first: str, payload: dict[str, Any]) -> str:
    return f"{first}\n\n{json.dumps(payload, sort_keys=True, indent=2)}\n"


# --------------------------------------------------------------------------- honest


def test_every_version_rebuilds_bit_identical_and_nothing_changes(repo: Path) -> None:
    before = (status_porcelain(repo), git("show-ref", cwd=repo), cache_files(repo))
    code, report, stderr = verify(repo, "--all")
    assert code == 0, report
    Draft202012Validator(SCHEMA).validate(report)  # the contract make docs publishes
    assert "RUNS the specs' training code" in stderr
    assert [v["tag"] for v in report["versions"]] == ["iris@v1.0.0", "iris@v1.1.0"]
    for version in report["versions"]:
        assert version["outcome"] == "verified"
        assert version["findings"] == []
        assert version["rebuilt_md5"] == version["registry_md5"] == version["lock_md5"]
        assert version["commit"] == commit_of(repo, version["tag"])
        assert [s["stage"] for s in version["stages"]] == [
            "prepare", "split", "train@logreg", "train@forest", "evaluate", "select",
        ]  # fmt: skip
        assert {s["status"] for s in version["stages"]} == {"identical"}
        # the CSV came from the cache with its hash checked; every cached output was hashed
        assert version["inputs"] == [
            {"path": CSV, "md5": version["inputs"][0]["md5"], "source": "cache"}
        ]
        # 11 cached outputs: the clean data and its report, three splits, two candidates
        # and their training reports, the model and lineage.json
        assert version["cache_checked"] == 11 and version["cache_absent"] == []
        record = json.loads((repo / f".mllc/verify/iris/{version['version']}.json").read_text())
        assert record["verified"] is True
        assert (record["commit"], record["model_md5"]) == (
            version["commit"],
            version["registry_md5"],
        )
    # the user's checkout, refs and cache are as they were; no worktree is left
    assert (status_porcelain(repo), git("show-ref", cwd=repo), cache_files(repo)) == before
    assert len(git("worktree", "list", "--porcelain", cwd=repo).split("\n\n")) == 1


def test_text_report_names_each_stage_and_the_model(repo: Path) -> None:
    proc = mllc("verify", "iris@v1.0.0", cwd=repo)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("iris@v1.0.0  commit ")
    assert any(line.startswith("  stage   train@forest  ok") for line in lines)
    assert any("model   bit-identical: md5 " in line for line in lines)
    assert lines[-1] == "verified: iris@v1.0.0"


def test_a_name_verifies_each_of_its_versions_and_unknown_ones_are_errors(repo: Path) -> None:
    proc = mllc("verify", "iris@v9.0.0", cwd=repo, check=False)
    assert proc.returncode == 1
    assert "iris@v9.0.0 is not registered (registered versions of iris: v1.0.0, v1.1.0)" in (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr
    nothing = mllc("verify", cwd=repo, check=False)
    assert nothing.returncode == 1 and "name what to verify" in nothing.stderr


# ------------------------------------------------------------------------ tampering


def test_an_edited_dvc_lock_is_caught_and_named(repo: Path) -> None:
    """A commit edits dvc.lock (the test split's hash) and the version's tag is re-made on
    it, message and all: the tag is consistent, the lock is not what the pipeline makes."""
    tag = "iris@v1.1.0"
    text = (repo / LOCK).read_text(encoding="utf-8")
    test_split = f"pipelines/{NAME}/data/test.parquet"
    real = lock_out_md5(text, test_split)
    forged = "0123456789abcdef0123456789abcdef"
    (repo / LOCK).write_text(text.replace(f"md5: {real}", f"md5: {forged}"), encoding="utf-8")
    git("commit", "-qam", "tidy the lock", cwd=repo)
    first, payload = payload_of(repo, tag)
    payload["commit"] = commit_of(repo, "HEAD")
    retag(repo, tag, "HEAD", message(first, payload))

    code, report, _ = verify(repo, tag)
    assert code == 1
    version = only(report)
    assert version["outcome"] == "failed"
    assert version["rebuilt_md5"] == version["registry_md5"]  # the model itself is fine
    # the split stage records the forged hash; evaluate and select read the real file
    assert findings(version) == [
        ("stage", f"split: {test_split}"),
        ("lock", f"evaluate: {test_split}"),
        ("lock", f"select: {test_split}"),
    ]
    detail = version["findings"][0]["detail"]
    assert f"dvc.lock records md5 {forged}" in detail and f"the rebuild gives md5 {real}" in detail


def test_a_replaced_model_in_the_dvc_cache_is_caught(repo: Path) -> None:
    code, report, _ = verify(repo, "iris@v1.1.0")
    assert code == 0
    md5 = only(report)["registry_md5"]
    overwrite(cache_object(repo, md5), b"not the model that was registered")

    code, report, _ = verify(repo, "iris@v1.1.0")
    assert code == 1
    version = only(report)
    # select copies the chosen candidate byte for byte: one cache object, two outputs
    selected = json.loads((repo / f"pipelines/{NAME}/metrics.json").read_text())["model"]
    assert findings(version) == [
        ("cache", f"pipelines/{NAME}/candidates/{selected}.joblib"),
        ("cache", MODEL),
    ]
    assert f"object {md5} now hashes to " in version["findings"][0]["detail"]
    record = json.loads((repo / ".mllc/verify/iris/v1.1.0.json").read_text())
    assert record["verified"] is False and MODEL in record["summary"]


def test_a_tag_moved_to_another_commit_is_caught(repo: Path) -> None:
    """v1.0.0's tag, same message, re-made on a new commit with the same files: the
    rebuild there is fine, the tag is not where it was made."""
    tag = "iris@v1.0.0"
    made_on = commit_of(repo, tag)
    tree = git("rev-parse", f"{made_on}^{{tree}}", cwd=repo)
    elsewhere = git("commit-tree", tree, "-p", made_on, "-m", "same files", cwd=repo)
    first, payload = payload_of(repo, tag)
    retag(repo, tag, elsewhere, message(first, payload))

    code, report, _ = verify(repo, tag)
    assert code == 1
    version = only(report)
    assert findings(version) == [("tag", tag)]
    assert version["findings"][0]["detail"] == (
        f"the tag was moved: its message records commit {made_on[:12]}, it points at "
        f"{elsewhere[:12]}"
    )


def test_a_tag_moved_onto_another_versions_commit_names_the_model_too(repo: Path) -> None:
    tag = "iris@v1.0.0"
    first, payload = payload_of(repo, tag)
    other = commit_of(repo, "iris@v1.1.0")
    retag(repo, tag, f"{other}~0", message(first, payload))
    code, report, _ = verify(repo, tag)
    assert code == 1
    # v1.1.0's commit rebuilds v1.1.0: v1.0.0's records match none of it
    assert findings(only(report)) == [
        ("tag", tag),
        ("registry", "metrics"),
        ("registry", "lineage"),
        ("lock", "model"),
        ("model", "model"),
    ]


def test_a_tag_whose_lineage_and_metrics_were_rewritten_is_caught(repo: Path) -> None:
    tag = "iris@v1.0.0"
    first, payload = payload_of(repo, tag)
    real_sha = payload["lineage"]["data_sha256"]
    payload["lineage"]["data_sha256"] = "f" * 64
    payload["metrics"]["test"]["accuracy"] = 0.999
    retag(repo, tag, commit_of(repo, tag), message(first, payload))

    code, report, _ = verify(repo, tag)
    assert code == 1
    version = only(report)
    assert findings(version) == [("registry", "metrics"), ("registry", "lineage")]
    metrics, lineage = (f["detail"] for f in version["findings"])
    assert "test.accuracy: 0.999 → " in metrics
    assert f'data_sha256: "{"f" * 64}" → "{real_sha}"' in lineage


# --------------------------------------------------------------------------- inputs


def test_an_input_missing_from_the_cache_is_unverifiable_not_skipped(repo: Path) -> None:
    data_md5 = json.loads(mllc("verify", "--json", "iris@v1.0.0", cwd=repo).stdout)
    md5 = data_md5["versions"][0]["inputs"][0]["md5"]
    cache_object(repo, md5).unlink()

    code, report, _ = verify(repo, "iris@v1.0.0")
    assert code == 1
    version = only(report)
    assert version["outcome"] == "unverifiable"
    assert version["inputs"] == [{"path": CSV, "md5": md5, "source": "missing"}]
    assert version["rebuilt_md5"] is None and version["stages"] == []
    assert version["notes"] == [
        f"unverifiable: input {CSV} (md5 {md5}, {CSV}.dvc) is not in the local DVC cache "
        "and no DVC remote is configured (dvc remote add)"
    ]
    text = mllc("verify", "iris@v1.0.0", cwd=repo, check=False).stdout
    assert "UNVERIFIABLE: iris@v1.0.0" in text


def test_an_input_only_on_the_remote_is_fetched_through_dvc(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    dvc("remote", "add", "-d", "store", str(remote), cwd=repo)
    dvc("push", "-q", f"{CSV}.dvc", cwd=repo)
    md5 = lock_out_md5((repo / f"{CSV}.dvc").read_text(encoding="utf-8"), "iris.csv")
    cache_object(repo, md5).unlink()

    code, report, stderr = verify(repo, "iris@v1.0.0")
    assert code == 0, report
    assert only(report)["inputs"] == [{"path": CSV, "md5": md5, "source": "remote"}]
    assert "fetching 1 input(s) through DVC" in stderr
    assert cache_object(repo, md5).is_file()  # fetched into the local cache


def test_a_replaced_input_in_the_cache_is_caught(repo: Path) -> None:
    md5 = lock_out_md5((repo / f"{CSV}.dvc").read_text(encoding="utf-8"), "iris.csv")
    overwrite(cache_object(repo, md5), b"sepal length (cm),target\n1.0,0\n")
    code, report, _ = verify(repo, "iris@v1.0.0")
    assert code == 1
    version = only(report)
    assert findings(version) == [("cache", CSV)]
    assert version["inputs"][0]["source"] == "corrupt"


def test_a_timeout_stops_the_rebuild_and_leaves_no_worktree(repo: Path) -> None:
    proc = mllc("verify", "iris@v1.0.0", "--timeout", "2", cwd=repo, check=False)
    assert proc.returncode == 1
    assert "verify stopped by --timeout: iris@v1.0.0 was still rebuilding" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(git("worktree", "list", "--porcelain", cwd=repo).split("\n\n")) == 1
    assert not list((repo / ".mllc").glob("preview/mllc-verify-*"))


def test_a_killed_verify_leaves_nothing_the_next_one_does_not_clear(repo: Path) -> None:
    """SIGKILL runs no cleanup: the worktree stays until the next verify (or preview)
    sees its maker is gone and removes it, with Git's record of it."""
    proc = mllc_popen("verify", "iris@v1.0.0", cwd=repo)
    previews = repo / ".mllc" / "preview"
    deadline = time.monotonic() + 120
    while not list(previews.glob("mllc-verify-*/pipelines/iris/dvc.yaml")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "verify never checked its worktree out"
        time.sleep(0.05)  # polling for the event (the checkout), not a fixed wait
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    (left,) = previews.glob("mllc-verify-*")
    assert str(left) in git("worktree", "list", "--porcelain", cwd=repo)

    code, report, _ = verify(repo, "iris@v1.0.0")
    assert code == 0, report
    assert not left.exists()
    assert len(git("worktree", "list", "--porcelain", cwd=repo).split("\n\n")) == 1
