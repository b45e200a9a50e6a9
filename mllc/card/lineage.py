"""A version's lineage as a graph: data files → stages → the model → the version →
the environments that ran it, with the md5 ``dvc.lock`` records for every file.

Built from the version commit's ``dvc.yaml`` (the stages, their deps and outs, ``foreach``
expanded as DVC does) and ``dvc.lock`` (the hashes), and from the registry (the version
tag and its environment assignments). Pure: the caller reads the files. Rendered as
text, as JSON data, and as a Mermaid ``flowchart LR`` whose labels are escaped
character by character (Mermaid's ``#NNN;`` entity codes), so a file name with quotes,
brackets, ``<script>``, backticks or line breaks can neither break the graph nor the
Markdown fence around it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mllc.observe.dvcyaml import UnsupportedPipelineError, expand_stages

NodeKind = Literal["source", "file", "stage", "model", "version", "environment"]
_MAX_LABEL = 160


@dataclass(frozen=True)
class Node:
    id: str
    kind: NodeKind
    label: str  # a path, a stage name, ``iris@v1.0.0``, an environment
    md5: str | None = None
    detail: str = ""  # ``running`` / ``ran`` (environments), ``dataset`` (a source)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    past: bool = False  # an environment that ran the version and no longer does


@dataclass(frozen=True)
class Graph:
    name: str
    version: str
    commit: str | None
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    problems: tuple[str, ...] = ()  # what could not be read, in words


@dataclass(frozen=True)
class StageIO:
    """One stage: its dependencies and outputs (repository-relative), in dvc.yaml order."""

    name: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]


def _join(base: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(base, path)) if base else posixpath.normpath(path)


def stages_of(dvc_yaml_path: str, dvc_doc: Any, lock: Any) -> tuple[list[StageIO], list[str]]:
    """The stages (paths relative to the repository root) and what could not be read.
    From ``dvc.yaml`` when it parses; else from ``dvc.lock``'s records alone."""
    problems: list[str] = []
    folder = posixpath.dirname(dvc_yaml_path)
    if isinstance(dvc_doc, Mapping):
        try:
            expanded = expand_stages(dvc_doc)
            found = []
            for name, stage in expanded.items():
                wdir = stage.get("wdir")
                base = _join(folder, wdir if isinstance(wdir, str) else ".")
                deps = [_join(base, d) for d in stage.get("deps") or [] if isinstance(d, str)]
                outs = [_join(base, o) for o in _outs(stage)]
                found.append(StageIO(name, tuple(deps), tuple(outs)))
            return found, problems
        except UnsupportedPipelineError as exc:
            problems.append(f"{dvc_yaml_path}: {exc}")
    else:
        problems.append(f"{dvc_yaml_path} is missing or unreadable; stages from dvc.lock")
    stages = lock.get("stages") if isinstance(lock, Mapping) else None
    found = []
    for name, entry in (stages or {}).items() if isinstance(stages, Mapping) else []:
        if not isinstance(entry, Mapping):
            continue
        deps = [str(d.get("path")) for d in entry.get("deps") or [] if isinstance(d, Mapping)]
        outs = [str(o.get("path")) for o in entry.get("outs") or [] if isinstance(o, Mapping)]
        found.append(StageIO(str(name), tuple(deps), tuple(outs)))
    return found, problems


def _outs(stage: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for section in ("outs", "metrics", "plots"):
        entries = stage.get(section) or []
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, str):
                out.append(entry)
            elif isinstance(entry, Mapping):
                out += [str(k) for k in entry]
    return out


def lock_hashes(lock: Any) -> dict[str, str]:
    """Every path ``dvc.lock`` records (as deps or outs of any stage) -> its md5."""
    found: dict[str, str] = {}
    stages = lock.get("stages") if isinstance(lock, Mapping) else None
    for entry in stages.values() if isinstance(stages, Mapping) else []:
        if not isinstance(entry, Mapping):
            continue
        for section in ("outs", "deps"):  # an out's own record first
            items = entry.get(section)
            for item in items if isinstance(items, list) else []:
                if isinstance(item, Mapping) and isinstance(item.get("path"), str):
                    md5 = item.get("md5")
                    if isinstance(md5, str):
                        found.setdefault(item["path"], md5)
    return found


def build(
    name: str,
    version: str,
    commit: str | None,
    stages: Sequence[StageIO],
    hashes: Mapping[str, str],
    model_path: str,
    source: str | None = None,
    environments: Sequence[tuple[str, bool]] = (),
    problems: Sequence[str] = (),
) -> Graph:
    """The graph. ``source``: a source that is no file (``sklearn: iris``), shown feeding
    the first stage; ``environments``: (name, running now) of each that ran the version."""
    nodes: list[Node] = []
    edges: list[Edge] = []
    files: dict[str, str] = {}

    def file(path: str) -> str:
        if path not in files:
            files[path] = f"f{len(files)}"
            kind: NodeKind = "model" if path == model_path else "file"
            nodes.append(Node(files[path], kind, path, hashes.get(path)))
        return files[path]

    if source is not None and stages:
        nodes.append(Node("src", "source", source, detail="dataset"))
        edges.append(Edge("src", "s0"))
    for i, stage in enumerate(stages):
        sid = f"s{i}"
        nodes.append(Node(sid, "stage", stage.name))
        edges += [Edge(file(d), sid) for d in stage.deps]
        edges += [Edge(sid, file(o)) for o in stage.outs]
    vid = "v"
    nodes.append(Node(vid, "version", f"{name}@{version}", detail=(commit or "")[:10]))
    edges.append(Edge(file(model_path), vid))
    for i, (env, running) in enumerate(environments):
        eid = f"e{i}"
        nodes.append(Node(eid, "environment", env, detail="running" if running else "ran"))
        edges.append(Edge(vid, eid, past=not running))
    return Graph(name, version, commit, tuple(nodes), tuple(edges), tuple(problems))


# ----------------------------------------------------------------------- renderers

_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SAFE = re.compile(r"[A-Za-z0-9 _.,:/@+=()-]")


def printable(text: str) -> str:
    """One line, no control character (a terminal escape), at most a few dozen words."""
    line = _CONTROLS.sub(" ", text).strip()
    return line if len(line) <= _MAX_LABEL else line[: _MAX_LABEL - 1] + "…"


def mermaid_label(text: str) -> str:
    """``text`` as the inside of a quoted Mermaid label: every character that is not a
    letter, digit or one of `` _.,:/@+=()-`` becomes an entity code ``#NNN;``, so no quote,
    bracket, backtick, ``<`` or ``#`` reaches Mermaid (or Markdown) as syntax."""
    return "".join(c if _SAFE.fullmatch(c) else f"#{ord(c)};" for c in printable(text))


_SHAPES: dict[NodeKind, tuple[str, str]] = {
    "source": ("[(", ")]"),
    "file": ("[", "]"),
    "stage": ("([", "])"),
    "model": ("[[", "]]"),
    "version": ("{{", "}}"),
    "environment": ("((", "))"),
}


def _label(node: Node) -> str:
    if node.kind in ("file", "model") and node.md5:
        return f"{node.label} md5 {node.md5[:12]}"
    if node.kind == "environment":
        return f"{node.label} ({node.detail})"
    return node.label


def mermaid(graph: Graph) -> str:
    """A Mermaid ``flowchart LR`` (without the Markdown fence)."""
    out = ["flowchart LR"]
    for node in graph.nodes:
        left, right = _SHAPES[node.kind]
        out.append(f'  {node.id}{left}"{mermaid_label(_label(node))}"{right}')
    for edge in graph.edges:
        arrow = "-.->" if edge.past else "-->"
        out.append(f"  {edge.source} {arrow} {edge.target}")
    return "\n".join(out) + "\n"


def text(graph: Graph) -> str:
    """The lineage for a terminal: data, stages (in → out), model, version, environments."""
    by_id = {n.id: n for n in graph.nodes}
    produced = {e.target for e in graph.edges if by_id[e.source].kind == "stage"}
    commit = f"  (commit {graph.commit[:10]})" if graph.commit else ""
    out = [f"{printable(graph.name)}@{printable(graph.version)}{commit}", "", "data"]

    def shown(node: Node) -> str:
        md5 = f"  md5 {node.md5[:12]}" if node.md5 else ""
        return f"{printable(node.label)}{md5}"

    inputs = [
        n
        for n in graph.nodes
        if n.kind == "source" or (n.kind in ("file", "model") and n.id not in produced)
    ]
    out += [f"  {shown(n)}" + ("  (dataset)" if n.kind == "source" else "") for n in inputs]
    if not inputs:
        out.append("  (no input recorded)")
    out += ["", "stages"]
    stages = [n for n in graph.nodes if n.kind == "stage"]
    for stage in stages:
        out.append(f"  {printable(stage.label)}")
        for e in graph.edges:
            if e.target == stage.id and by_id[e.source].kind != "source":
                out.append(f"    in   {shown(by_id[e.source])}")
        for e in graph.edges:
            if e.source == stage.id:
                out.append(f"    out  {shown(by_id[e.target])}")
    if not stages:
        out.append("  (no stage recorded)")
    out += ["", "model"]
    for e in graph.edges:
        if by_id[e.target].kind == "version":
            out.append(f"  {shown(by_id[e.source])}  ->  {printable(by_id[e.target].label)}")
    out += ["", "deployments"]
    envs = [n for n in graph.nodes if n.kind == "environment"]
    out += [f"  {printable(n.label)}  ({n.detail})" for n in envs] or ["  (never deployed)"]
    if graph.problems:
        out += ["", "not recorded"] + [f"  {printable(p)}" for p in graph.problems]
    return "\n".join(out) + "\n"


def to_json(graph: Graph) -> dict[str, Any]:
    return {
        "name": graph.name,
        "version": graph.version,
        "commit": graph.commit,
        "nodes": [
            {"id": n.id, "kind": n.kind, "label": n.label, "md5": n.md5, "detail": n.detail}
            for n in graph.nodes
        ],
        "edges": [{"from": e.source, "to": e.target, "past": e.past} for e in graph.edges],
        "problems": list(graph.problems),
    }
