"""Lineage (``mllc lineage``, and the graph the model card embeds): the path from data
files through the stages to the model, the version and its environments.

The graph's pure parts are tested on hostile names (quotes, brackets, ``<script>``,
line breaks, backticks, ``#``, entity look-alikes); the command on a real repository
whose source file has such a name, applied for real (Git, DVC, training, a local
server on 127.0.0.1), with its Markdown card rendered by GitHub's engine.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cmarkgfm
import pytest
import yaml
from cmarkgfm.cmark import Options
from helpers_repo import (
    NAME,
    PIPE,
    STAGES,
    dump_spec,
    dvc,
    fast_spec,
    git,
    mllc,
    spec_path,
    status_porcelain,
    wait_until_gone,
)

from mllc.card.lineage import (
    StageIO,
    build,
    lock_hashes,
    mermaid,
    mermaid_label,
    stages_of,
    text,
    to_json,
)

HOSTILE_NAMES = (
    'data/we"ird] [x](y) <script>alert(1)</script> `tick` #1 &amp; #35; end.csv',
    "data/line\nbreak\r\nand\u2028more.csv",
    'data/"]) --> evil["pwned',
    "data/```mermaid```.csv",
    "data/%%{init: {'theme': 'dark'}}%%.csv",
    "data/click f0 call alert().csv",
)
# one node line, one edge line: nothing else may appear in the graph
NODE = re.compile(
    r'  (src|s\d+|f\d+|v|e\d+)(\[\(|\[|\(\[|\[\[|\{\{|\(\()"[A-Za-z0-9 _.,:/@+=()#;-]*"'
    r"(\)\]|\]|\]\)|\]\]|\}\}|\)\))"
)
EDGE = re.compile(r"  (src|s\d+|f\d+|v|e\d+) (-->|-\.->) (s\d+|f\d+|v|e\d+)")


def decode(label: str) -> str:
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), label)


def hostile_graph() -> Any:
    stages = [
        StageIO("prepare", HOSTILE_NAMES, ("pipelines/iris/data/clean.parquet",)),
        StageIO("select", ("pipelines/iris/data/clean.parquet",), ("pipelines/iris/model.joblib",)),
    ]
    hashes = {p: f"{i:032x}" for i, p in enumerate([*HOSTILE_NAMES, "pipelines/iris/model.joblib"])}
    return build(
        "iris",
        "v1.0.0",
        "a" * 40,
        stages,
        hashes,
        "pipelines/iris/model.joblib",
        source='sklearn: "iris"]',
        environments=[('prod"]\n<b>', True), ("staging", False)],
    )


def test_labels_are_escaped_character_by_character() -> None:
    for name in HOSTILE_NAMES:
        label = mermaid_label(name)
        assert re.fullmatch(r"[A-Za-z0-9 _.,:/@+=()#;-]*", label), label
        # what a reader sees is the name, on one line
        assert decode(label) == re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+", " ", name).strip()
        assert not {'"', "[", "]", "<", ">", "`", "\n", "\r", "{", "}", "%", "&"} & set(label)


def test_the_graph_survives_hostile_names() -> None:
    graph = hostile_graph()
    lines = mermaid(graph).splitlines()
    assert lines[0] == "flowchart LR"
    nodes = [line for line in lines[1:] if NODE.fullmatch(line)]
    edges = [line for line in lines[1:] if EDGE.fullmatch(line)]
    assert len(nodes) == len(graph.nodes) and len(edges) == len(graph.edges)
    assert len(lines) == 1 + len(nodes) + len(edges)
    shown = [decode(line.split('"')[1]) for line in nodes]
    assert any("<script>alert(1)</script>" in label for label in shown)
    assert 'prod"] <b> (running)' in shown and "staging (ran)" in shown
    assert "  v -.-> e1" in lines and "  v --> e0" in lines
    # the text form is one line per entry, no control character
    out = text(graph)
    assert "\r" not in out and "\u2028" not in out and "line break and more.csv" in out
    assert "  staging  (ran)" in out
    data = to_json(graph)
    assert {n["label"] for n in data["nodes"]} >= set(HOSTILE_NAMES)


def test_stages_follow_dvc_yaml_with_foreach_and_wdir() -> None:
    dvc_yaml = {
        "stages": {
            "train": {
                "foreach": ["a", "b"],
                "do": {"wdir": "../..", "cmd": "x", "deps": ["d.csv"], "outs": ["m/${item}"]},
            },
            "report": {
                "cmd": "y",
                "deps": ["m/a"],
                "metrics": [{"s.json": {"cache": False}}],
                "plots": ["p.csv"],
            },
        }
    }
    stages, problems = stages_of("pipelines/x/dvc.yaml", dvc_yaml, None)
    assert problems == []
    assert stages == [
        StageIO("train@a", ("d.csv",), ("m/a",)),
        StageIO("train@b", ("d.csv",), ("m/b",)),
        StageIO("report", ("pipelines/x/m/a",), ("pipelines/x/s.json", "pipelines/x/p.csv")),
    ]
    lock = {
        "schema": "2.0",
        "stages": {
            "train@a": {
                "cmd": "x",
                "deps": [{"path": "d.csv", "md5": "1" * 32}],
                "outs": [{"path": "m/a", "md5": "2" * 32}],
            }
        },
    }
    assert lock_hashes(lock) == {"d.csv": "1" * 32, "m/a": "2" * 32}
    # no dvc.yaml: the lock's records, said so
    stages, problems = stages_of("pipelines/x/dvc.yaml", None, lock)
    assert stages == [StageIO("train@a", ("d.csv",), ("m/a",))] and problems


# ------------------------------------------------------------------ a real repository

SOURCE = 'data/we"ird] [x](y) <script>`tick` #1.csv'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from sklearn.datasets import load_iris

    path = tmp_path_factory.mktemp("lineage") / "repo"
    path.mkdir()
    spec = fast_spec()
    spec["data"]["source"] = {"csv": SOURCE}
    spec.pop("monitoring", None)
    spec["environments"] = {"staging": {"target": "local", "model": "latest", "port": free_port()}}
    git("init", "-q", cwd=path)
    (path / ".gitignore").write_text("/.mllc/\n", encoding="utf-8")
    dvc("init", "-q", cwd=path)
    (path / "data").mkdir()
    load_iris(as_frame=True).frame.to_csv(path / SOURCE, index=False)
    (path / "specs").mkdir()
    spec_path(path).write_text(dump_spec(spec), encoding="utf-8")
    git("add", "-A", cwd=path)
    git("commit", "-qm", "spec and data", cwd=path)
    try:
        mllc("apply", "--auto-approve", cwd=path)
        yield path
    finally:
        for state in (path / ".mllc" / "serve").rglob("server-*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                os.kill(json.loads(state.read_text())["pid"], signal.SIGKILL)
        wait_until_gone(path)


@pytest.mark.slow
def test_lineage_names_stages_files_and_environments(repo: Path) -> None:
    lock = yaml.safe_load((repo / PIPE / "dvc.lock").read_text(encoding="utf-8"))
    out = mllc("lineage", f"{NAME}@v1.0.0", cwd=repo).stdout
    commit = git("rev-parse", f"{NAME}@v1.0.0^{{commit}}", cwd=repo)
    assert out.startswith(f"{NAME}@v1.0.0  (commit {commit[:10]})\n")
    for stage in STAGES:
        assert f"\n  {stage}\n" in out
    assert f"\n  {SOURCE}  md5 {lock['stages']['prepare']['deps'][0]['md5'][:12]}\n" in out
    model = next(o for o in lock["stages"]["select"]["outs"] if o["path"].endswith("model.joblib"))
    assert f"{PIPE}/model.joblib  md5 {model['md5'][:12]}  ->  {NAME}@v1.0.0" in out
    assert "\ndeployments\n  staging  (running)\n" in out

    data = json.loads(mllc("lineage", f"{NAME}@v1.0.0", "--format", "json", cwd=repo).stdout)
    nodes = {n["id"]: n for n in data["nodes"]}
    assert [n["label"] for n in data["nodes"] if n["kind"] == "stage"] == list(STAGES)
    recorded = {
        o["path"]: o["md5"]
        for stage in lock["stages"].values()
        for o in [*stage.get("deps", []), *stage.get("outs", [])]
    }
    files = {n["label"]: n["md5"] for n in data["nodes"] if n["kind"] in ("file", "model")}
    assert files == {p: m for p, m in recorded.items() if p in files}
    assert set(recorded) - set(files) == set()  # every file dvc.lock records is in the graph
    for edge in data["edges"]:
        kinds = (nodes[edge["from"]]["kind"], nodes[edge["to"]]["kind"])
        assert kinds in {
            ("file", "stage"),
            ("stage", "file"),
            ("stage", "model"),
            ("model", "version"),
            ("model", "stage"),
            ("version", "environment"),
        }, kinds
    (env,) = [n for n in data["nodes"] if n["kind"] == "environment"]
    assert env["label"] == "staging" and env["detail"] == "running"

    graph = mllc("lineage", f"{NAME}@v1.0.0", "--format", "mermaid", cwd=repo).stdout
    lines = graph.splitlines()
    assert lines[0] == "flowchart LR"
    assert all(NODE.fullmatch(line) or EDGE.fullmatch(line) for line in lines[1:]), graph
    labels = [decode(line.split('"')[1]) for line in lines[1:] if NODE.fullmatch(line)]
    assert f"{SOURCE} md5 {lock['stages']['prepare']['deps'][0]['md5'][:12]}" in labels
    assert {*STAGES, f"{NAME}@v1.0.0", "staging (running)"} <= set(labels)
    assert status_porcelain(repo) == ""


@pytest.mark.slow
def test_the_card_embeds_the_graph_intact(repo: Path) -> None:
    graph = mllc("lineage", f"{NAME}@v1.0.0", "--format", "mermaid", cwd=repo).stdout
    # apply wrote its card before the version ran anywhere: the same graph, no environment
    before = "".join(f"{line}\n" for line in graph.splitlines() if "e0" not in line)
    for md, expected in (
        (mllc("card", NAME, cwd=repo).stdout, graph),
        (git("show", f"{NAME}@v1.0.0:{PIPE}/card.md", cwd=repo) + "\n", before),
    ):
        fenced = re.findall(r"^```mermaid\n(.*?)^```$", md, re.M | re.S)
        assert fenced == [expected]
        rendered = cmarkgfm.github_flavored_markdown_to_html(md, options=Options.CMARK_OPT_UNSAFE)
        blocks = re.findall(r'<pre lang="mermaid"><code>(.*?)</code></pre>', rendered, re.S)
        blocks += re.findall(
            r'<pre><code class="language-mermaid">(.*?)</code></pre>', rendered, re.S
        )
        assert [html.unescape(b) for b in blocks] == [expected]
        assert "<script" not in rendered


@pytest.mark.slow
def test_lineage_of_an_unknown_version_is_a_clean_error(repo: Path) -> None:
    proc = subprocess.run(
        ["git", "tag", "-l"], cwd=repo, capture_output=True, text=True, check=True
    )
    assert f"{NAME}@v1.0.0" in proc.stdout.split()
    bad = mllc("lineage", f"{NAME}@v2.0.0", cwd=repo, check=False)
    assert bad.returncode == 1 and "not a registered version" in bad.stderr
    assert "Traceback" not in bad.stderr and bad.stdout == ""
