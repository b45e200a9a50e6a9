"""Every version rebuilds from its tag on another machine: the newcomer's path, for real.

``mllc init`` on an empty folder, a spec reading the user's own CSV (or Parquet) file
that nothing versions yet, ``mllc apply --auto-approve`` with no commit in between.
Then, as a teammate would: clone the repository elsewhere, check out the tag, fetch
the data through DVC and ``dvc repro``: the model is bit-identical to the registered
one. Also: plan shows an unversioned source and an edited one (old → new hash, rows
before → after), apply records each, and registration refuses a version whose
pipeline reads a file that the commit neither holds nor tracks with DVC.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers_repo import ROOT, dump_spec, dvc, git, mllc

pytestmark = pytest.mark.slow

NAME = "churn"
MODEL = f"pipelines/{NAME}/model.joblib"


def churn_frame(rows: int, seed: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, rows),
            "charges": rng.normal(70, 20, rows).round(2),
            "plan": rng.choice(["basic", "pro"], rows),
        }
    )
    noise = rng.random(rows) < 0.1
    frame["churned"] = (((frame.tenure < 20) & (frame.charges > 65)) ^ noise).astype(int)
    return frame


def write_data(repo: Path, kind: str, frame: Any) -> str:
    path = f"data/{NAME}.{kind}"
    (repo / "data").mkdir(exist_ok=True)
    if kind == "csv":
        frame.to_csv(repo / path, index=False)
    else:
        frame.to_parquet(repo / path, index=False)
    return path


def churn_spec(source: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "mllc/v1",
        "kind": "Lifecycle",
        "metadata": {"name": NAME, "description": "Who cancels", "owner": "a@example.com"},
        "problem": {"task": "classification", "target": "churned", "metric": "f1_macro"},
        "data": {"source": source, "split": {"test": 0.25, "seed": 7}},
        "models": {
            "logreg": {
                "estimator": "sklearn.linear_model.LogisticRegression",
                "params": {"C": 1.0, "max_iter": 500},
            },
            "forest": {
                "estimator": "sklearn.ensemble.RandomForestClassifier",
                "params": {"n_estimators": 10, "random_state": 0},
            },
        },
    }


def readme_spec() -> dict[str, Any]:
    """The spec of the README's quickstart, as the README writes it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text.split("cat > specs/churn.yaml <<'YAML'\n", 1)[1].split("\nYAML\n", 1)[0]
    spec = yaml.safe_load(body)
    assert isinstance(spec, dict) and spec["data"]["source"] == {"csv": "data/churn.csv"}
    return spec


def newcomer(repo: Path, kind: str) -> str:
    """The README quickstart's steps on an empty folder: init, own data, its spec,
    validate, apply. No commit. (Without the README's staging environment: the
    servers it starts are not what these tests are about.)"""
    mllc("init", ".", cwd=repo)
    (repo / "specs" / "iris.yaml").unlink()
    path = write_data(repo, kind, churn_frame(400, seed=1))
    spec = readme_spec()
    spec["data"]["source"] = {kind: path}
    del spec["environments"]
    (repo / "specs" / f"{NAME}.yaml").write_text(dump_spec(spec))
    mllc("validate", cwd=repo)
    return path


def registered_md5(repo: Path, tag: str) -> str:
    """The model hash the registry tag records (GTO's message: a line, a blank, JSON)."""
    message = git("for-each-ref", "--format=%(contents)", f"refs/tags/{tag}", cwd=repo)
    md5 = json.loads(message.partition("\n\n")[2])["model_md5"]
    assert isinstance(md5, str)
    return md5


def md5_of(file: Path) -> str:
    return hashlib.md5(file.read_bytes()).hexdigest()


def plan(repo: Path) -> dict[str, Any]:
    data = json.loads(mllc("plan", "--format", "json", cwd=repo).stdout)
    assert isinstance(data, dict)
    return data


def change(plan_doc: dict[str, Any], address: str) -> dict[str, Any]:
    found = [c for c in plan_doc["changes"] if c["address"] == address]
    assert found, f"no {address} in {[c['address'] for c in plan_doc['changes']]}"
    result: dict[str, Any] = found[0]
    return result


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_version_rebuilds_from_its_tag_in_a_clone(tmp_path: Path, kind: str) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    path = newcomer(repo, kind)

    first = change(plan(repo), f"{NAME}/data/source")
    assert first["action"] == "create" and first["category"] == "retrain"
    assert first["reasons"][0] == (
        f"{path} is not versioned: apply will track it with DVC ({path}.dvc)"
    )

    applied = mllc("apply", "--auto-approve", cwd=repo)
    assert f"registered {NAME}@v1.0.0" in applied.stdout
    tag = f"{NAME}@v1.0.0"
    in_tag = set(git("ls-tree", "-r", "--name-only", tag, cwd=repo).splitlines())
    for needed in (
        f"specs/{NAME}.yaml",
        f"pipelines/{NAME}/dvc.yaml",
        f"pipelines/{NAME}/dvc.lock",
        f"{path}.dvc",
        ".dvc/config",
        ".dvcignore",
        ".gitignore",
    ):
        assert needed in in_tag, f"{needed} is not in the commit {tag} points at"
    assert path not in in_tag  # the data itself is DVC's, not Git's
    assert plan(repo)["changes"] == [], "apply left something for the next plan"

    clone = tmp_path / "elsewhere"
    git("clone", "-q", str(repo), str(clone), cwd=tmp_path)
    git("checkout", "-q", tag, cwd=clone)
    # Stand-in for a DVC remote: the original's cache (a remote has the same layout).
    # Only the data is fetched: every stage output is rebuilt, none downloaded.
    dvc("remote", "add", "-d", "origin", str(repo / ".dvc" / "cache"), cwd=clone)
    dvc("pull", f"{path}.dvc", cwd=clone)
    assert not (clone / MODEL).exists()
    repro = dvc("repro", f"pipelines/{NAME}/dvc.yaml", cwd=clone)
    assert "dvc.yaml:train@forest'" in repro.stdout and "dvc.yaml:select'" in repro.stdout
    assert (clone / MODEL).read_bytes() == (repo / MODEL).read_bytes()
    assert md5_of(clone / MODEL) == registered_md5(repo, tag)


def test_an_edited_source_is_a_new_data_version(tmp_path: Path) -> None:
    """With a default DVC remote (a folder here), apply also pushes each data version."""
    repo = tmp_path / "repo"
    repo.mkdir()
    path = newcomer(repo, "csv")
    remote = tmp_path / "remote"
    dvc("remote", "add", "-d", "storage", str(remote), cwd=repo)
    mllc("apply", "--auto-approve", cwd=repo)
    pointer_v1 = (repo / f"{path}.dvc").read_text()
    assert "storage" in git("show", f"{NAME}@v1.0.0:.dvc/config", cwd=repo)

    def pushed(md5: str) -> bool:
        return (remote / "files" / "md5" / md5[:2] / md5[2:]).is_file()

    # A team's data update: replace the file, plan, apply.
    old = md5_of(repo / path)
    grown = churn_frame(460, seed=2)
    write_data(repo, "csv", grown)
    new = md5_of(repo / path)
    edited = change(plan(repo), f"{NAME}/data/source")
    assert edited["action"] == "update" and edited["category"] == "retrain"
    assert edited["reasons"] == [
        f"{path} changed: md5 {old[:12]} → {new[:12]}, rows 400 → 460: apply records it "
        f"as a new data version with DVC ({path}.dvc)"
    ]
    assert (edited["before"], edited["after"]) == (old, new)
    assert pushed(old) and not pushed(new)

    applied = mllc("apply", "--auto-approve", cwd=repo)
    assert f"registered {NAME}@v1.1.0" in applied.stdout
    pointer_v2 = git("show", f"{NAME}@v1.1.0:{path}.dvc", cwd=repo)
    assert new in pointer_v2 and old in pointer_v1
    assert git("show", f"{NAME}@v1.0.0:{path}.dvc", cwd=repo) == pointer_v1.strip()
    assert pushed(new)
    assert plan(repo)["changes"] == []


def test_registration_refuses_an_input_the_commit_does_not_hold(tmp_path: Path) -> None:
    """A user's training script that was never committed: the version could not rebuild."""
    repo = tmp_path / "repo"
    repo.mkdir()
    mllc("init", str(repo), cwd=tmp_path)
    (repo / "specs" / "iris.yaml").unlink()
    spec = churn_spec({"sklearn": "iris"})
    spec["problem"]["target"] = "target"
    spec["models"] = {"own": {"command": "python src/train.py", "deps": ["src/train.py"]}}
    (repo / "specs" / f"{NAME}.yaml").write_text(dump_spec(spec))
    (repo / "src").mkdir()
    (repo / "src" / "train.py").write_text(
        "import os, joblib, pandas as pd\n"
        "from sklearn.tree import DecisionTreeClassifier\n"
        f"df = pd.read_parquet('pipelines/{NAME}/data/train.parquet')\n"
        "model = DecisionTreeClassifier(max_depth=3, random_state=0)\n"
        "model.fit(df.drop(columns=['target']), df['target'])\n"
        f"os.makedirs('pipelines/{NAME}/candidates', exist_ok=True)\n"
        f"joblib.dump(model, 'pipelines/{NAME}/candidates/own.joblib')\n"
    )
    refused = mllc("apply", "--auto-approve", cwd=repo, check=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "cannot register" in refused.stderr and "src/train.py" in refused.stderr
    assert git("tag", "--list", cwd=repo) == ""

    git("add", "src/train.py", cwd=repo)
    git("commit", "-qm", "the training script", cwd=repo)
    again = mllc("apply", "--auto-approve", cwd=repo)
    assert f"registered {NAME}@v1.0.0" in again.stdout


def test_counting_rows_reads_only_regular_files_inside_the_repository(tmp_path: Path) -> None:
    """Plan counts the rows of a changed source: never through a symlink out of the
    repository, never from a device."""
    from mllc.observe.sources import count_rows
    from mllc.saferead import RefusedRead

    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    churn_frame(30, seed=3).to_csv(repo / "data" / "in.csv", index=False)
    churn_frame(12, seed=3).to_parquet(repo / "data" / "in.parquet", index=False)
    assert count_rows(repo, "data/in.csv") == 30
    assert count_rows(repo, "data/in.parquet") == 12
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n2\n", encoding="utf-8")
    (repo / "data" / "out.csv").symlink_to(outside)
    (repo / "data" / "zero.csv").symlink_to("/dev/zero")
    for path in ("data/out.csv", "data/zero.csv"):
        with pytest.raises(RefusedRead) as refused:
            count_rows(repo, path)
        assert path in str(refused.value) and str(outside) not in str(refused.value)


def test_a_source_inside_a_folder_dvc_tracks_whole(tmp_path: Path) -> None:
    """``dvc add data`` (the folder, committed by the user) versions data/churn.csv too:
    plan shows nothing to track, and an edit is recorded by re-adding the folder."""
    repo = tmp_path / "repo"
    repo.mkdir()
    path = newcomer(repo, "csv")
    dvc("add", "data", cwd=repo)
    git("add", "data.dvc", ".gitignore", ".dvc/config", ".dvcignore", cwd=repo)
    git("commit", "-qm", "the data, tracked by DVC as a folder", cwd=repo)
    first = plan(repo)
    assert not [c for c in first["changes"] if c["kind"] == "data"], first["changes"]
    mllc("apply", "--auto-approve", cwd=repo)
    assert not (repo / f"{path}.dvc").exists()

    write_data(repo, "csv", churn_frame(430, seed=4))
    edited = change(plan(repo), f"{NAME}/data/source")
    assert edited["action"] == "update" and edited["reasons"][0].endswith(
        "apply records it as a new data version with DVC (data.dvc)"
    )
    assert ", rows 400 → 430" in edited["reasons"][0]
    applied = mllc("apply", "--auto-approve", cwd=repo)
    assert f"registered {NAME}@v1.1.0" in applied.stdout
    assert git("show", f"{NAME}@v1.1.0:data.dvc", cwd=repo) != git(
        "show", f"{NAME}@v1.0.0:data.dvc", cwd=repo
    )
    assert plan(repo)["changes"] == []


def test_a_small_source_committed_to_git_is_versioned_by_git(tmp_path: Path) -> None:
    """A file Git tracks needs no DVC pointer; its edit is committed with the retrain."""
    repo = tmp_path / "repo"
    repo.mkdir()
    path = newcomer(repo, "csv")
    git("add", path, cwd=repo)  # staged, not committed: apply's commit will hold it
    staged = change(plan(repo), f"{NAME}/data/source")
    assert (staged["action"], staged["category"]) == ("update", "metadata")
    assert staged["reasons"] == [f"{path} is not committed: apply commits it"]
    mllc("apply", "--auto-approve", cwd=repo)
    assert not (repo / f"{path}.dvc").exists()
    assert git("show", f"{NAME}@v1.0.0:{path}", cwd=repo) == (repo / path).read_text().strip()

    write_data(repo, "csv", churn_frame(420, seed=5))
    edited = change(plan(repo), f"{NAME}/data/source")
    assert edited["action"] == "update" and edited["category"] == "retrain"
    assert edited["reasons"][0].endswith(", rows 400 → 420: apply commits it (tracked by Git)")
    applied = mllc("apply", "--auto-approve", cwd=repo)
    assert f"registered {NAME}@v1.1.0" in applied.stdout
    assert git("show", f"{NAME}@v1.1.0:{path}", cwd=repo) == (repo / path).read_text().strip()
    assert plan(repo)["changes"] == []


def test_a_teammates_clone_gets_the_data_through_apply(tmp_path: Path) -> None:
    """A fresh clone has the pointer but not the data: plan says so, and apply fetches it
    from the default remote (the original's cache standing in for one, configured
    locally in the clone), rebuilds, and finds the model already registered."""
    repo = tmp_path / "repo"
    repo.mkdir()
    path = newcomer(repo, "csv")
    mllc("apply", "--auto-approve", cwd=repo)

    clone = tmp_path / "teammate"
    git("clone", "-q", str(repo), str(clone), cwd=tmp_path)
    dvc("remote", "add", "--local", "-d", "origin", str(repo / ".dvc" / "cache"), cwd=clone)
    assert not (clone / path).exists()
    missing = change(plan(clone), f"{NAME}/data/source")
    assert missing["reasons"] == [
        f"{path} is not here: apply checks out the version {path}.dvc records "
        "(from the DVC cache, or the default remote)"
    ]
    applied = mllc("apply", "--auto-approve", cwd=clone)
    assert f"checked out {path} ({path}.dvc)" in applied.stdout
    assert md5_of(clone / path) == md5_of(repo / path)
    assert f"is already {NAME}@v1.0.0" in applied.stdout
    assert md5_of(clone / MODEL) == registered_md5(repo, f"{NAME}@v1.0.0")
    assert plan(clone)["changes"] == []
