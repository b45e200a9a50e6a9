"""Safe YAML loading that remembers where every value came from.

PyYAML's C composer builds a node graph with line/column marks; we construct
plain Python values from it ourselves so that we can:

* refuse every tag beyond the plain data ones (``!!python/...``, ``!custom``,
  ``!!binary``, ``!!set`` ...);
* report duplicate keys instead of silently keeping the last one;
* bound alias expansion: an alias re-visits a node, so a "billion laughs"
  document is refused after ``max_nodes`` constructed values, quickly and in
  little memory;
* record the position of every key and value by field path, so validation
  errors can name ``file:line:column``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from mllc import saferead
from mllc.errors import Diagnostic

# YAML 1.2 scalars (1e-3 is a number, on/yes are strings), as DVC and editors read
# them; the C parser is ~8x faster than the pure one and keeps marks.
from mllc.yaml12 import Yaml12Loader as _Loader

MAX_BYTES = saferead.MAX_BYTES  # 1 MiB: a lifecycle spec is a few KiB
MAX_NODES = 100_000  # constructed values, aliases counted each time they expand
MAX_DEPTH = 64

Path = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_SCALAR_TAGS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    # Implicit timestamps (``2024-01-01``) are kept as the text the user wrote.
    "tag:yaml.org,2002:timestamp",
}
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


@dataclass
class Positions:
    """Where each path's key and value start (1-based line, column)."""

    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def of_value(self, path: Path) -> tuple[int, int]:
        """The value at ``path``, or the nearest enclosing value that has a position."""
        for n in range(len(path), -1, -1):
            pos = self.values.get(path[:n])
            if pos is not None:
                return pos
        return (1, 1)

    def of_key(self, path: Path) -> tuple[int, int]:
        """The key at ``path`` (for unknown-key errors); its value if it has no key."""
        return self.keys.get(path) or self.of_value(path)


@dataclass
class Loaded:
    data: Any
    positions: Positions
    # Non-fatal problems (duplicate keys, refused tags); data is then incomplete.
    problems: list[YamlProblem] = field(default_factory=list)


class YamlProblem(Exception):
    def __init__(self, line: int, column: int, message: str, code: str = "yaml") -> None:
        super().__init__(message)
        self.line, self.column, self.message, self.code = line, column, message, code


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(self, scalar_loader: Any, max_nodes: int) -> None:
        self.positions = Positions()
        self.count = 0
        self.max_nodes = max_nodes
        self._scalars = scalar_loader
        # Problems that do not stop the walk, so that one run reports them all.
        self.problems: list[YamlProblem] = []

    def build(self, node: yaml.Node, path: Path, depth: int) -> Any:
        self.count += 1
        if self.count > self.max_nodes:
            raise YamlProblem(  # at 1:1: where the count ran out is an arbitrary place
                1,
                1,
                f"document expands to more than {self.max_nodes} values "
                "(aliases are expanded each time they are used); refused",
                code="yaml-too-large",
            )
        if depth > MAX_DEPTH:
            raise YamlProblem(*_mark(node), f"nesting deeper than {MAX_DEPTH} levels; refused")
        self.positions.values.setdefault(path, _mark(node))
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP:
                return self._bad_tag(node)
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                return self._bad_tag(node)
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if node.tag not in _SCALAR_TAGS:
            return self._bad_tag(node)
        if node.tag in (_STR, "tag:yaml.org,2002:timestamp"):
            return str(node.value)
        value = node.value if len(node.value) <= 40 else node.value[:37] + "..."
        try:
            result = self._scalars.construct_object(node, deep=True)
        except Exception as exc:  # any explicit-tag oddity (!!bool maybe, !!int '') is the user's
            detail = str(exc).split(";")[0][:120] or type(exc).__name__
            raise YamlProblem(*_mark(node), f"cannot read {value!r}: {detail}") from None
        if isinstance(result, int) and not isinstance(result, bool) and abs(result) >= 2**63:
            raise YamlProblem(*_mark(node), f"{value!r} is too large a number")
        if isinstance(result, float) and not math.isfinite(result):
            raise YamlProblem(*_mark(node), f"{value!r} is not a finite number")
        return result

    def _mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.problems.append(
                    YamlProblem(
                        *_mark(key_node), "merge keys (<<) are not supported; write the keys out"
                    )
                )
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _SCALAR_TAGS:
                self.problems.append(
                    YamlProblem(*_mark(key_node), "mapping keys must be plain scalars")
                )
                continue
            key = str(key_node.value)
            if key in out:
                first = self.positions.keys.get((*path, key), (0, 0))
                self.problems.append(
                    YamlProblem(
                        *_mark(key_node),
                        f"duplicate key {key!r} (first defined at line {first[0]})",
                        code="duplicate-key",
                    )
                )
                continue
            self.positions.keys[(*path, key)] = _mark(key_node)
            out[key] = self.build(value_node, (*path, key), depth + 1)
        return out

    def _bad_tag(self, node: yaml.Node) -> None:
        self.problems.append(
            YamlProblem(
                *_mark(node),
                f"tag '{_tag(node.tag)}' is not allowed: specs hold plain data only",
                code="yaml-tag",
            )
        )


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str) -> YamlProblem:
    """Point at the problem; say where the construct it broke started (an open quote...)."""
    mark, context = exc.problem_mark, exc.context_mark
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    message = f"invalid YAML: {exc.problem or exc.context or 'syntax error'}"
    if context is not None and exc.context:
        message += f" ({exc.context} at line {context.line + 1}, column {context.column + 1})"
    if mark is None or (context is not None and mark.line >= lines):
        mark = context  # past the end of the file: the start of the construct is more useful
    if "mapping values are not allowed" in (exc.problem or ""):
        message += "; is a space missing after a ':' or a quote unclosed, here or just above?"
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return YamlProblem(line, col, message)


def _tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org") else tag


def load_text(text: str, *, max_nodes: int = MAX_NODES) -> Loaded:
    """Parse one YAML document into plain data plus positions; raise YamlProblem."""
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise YamlProblem(1, 1, f"file is larger than {MAX_BYTES // 1024} KiB; refused")
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise YamlProblem(line, 1, "file contains a NUL byte")
    try:
        loader = _Loader(text)
    except UnicodeEncodeError as exc:  # a lone surrogate, from an API caller's str
        raise YamlProblem(1, 1, f"text is not valid Unicode: {exc.reason}") from None
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise _syntax_problem(exc, text) from None
    except yaml.YAMLError as exc:  # e.g. a reader error for a control character
        raise YamlProblem(1, 1, f"invalid YAML: {exc}".splitlines()[0]) from None
    finally:
        loader.dispose()
    if node is None:
        return Loaded(None, Positions())
    builder = _Builder(_Loader(""), max_nodes)
    data = builder.build(node, (), 0)
    return Loaded(data, builder.positions, builder.problems)


def problem_to_diagnostic(file: str, problem: YamlProblem) -> Diagnostic:
    return Diagnostic(file, problem.line, problem.column, "", problem.message, problem.code)


def read_yaml(
    path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    *,
    shown: str | None = None,
    max_nodes: int = MAX_NODES,
) -> Loaded | None:
    """A YAML file from the repository through the same bounds as a spec: confined and
    capped on ``stat`` before reading (:mod:`mllc.saferead`), aliases, depth and tags
    bounded here. None when the file does not exist; :class:`~mllc.saferead.RefusedRead`
    naming the file (with every problem found, located) when it cannot be used."""
    base = root if root is not None else saferead.confinement_root(path)
    name = shown if shown is not None else saferead.shown_path(path, base)
    text = saferead.read_text(path, base, max_bytes=MAX_BYTES, shown=name)
    if text is None:
        return None
    try:
        loaded = load_text(text, max_nodes=max_nodes)
    except YamlProblem as problem:
        raise saferead.RefusedRead([problem_to_diagnostic(name, problem)]) from None
    if loaded.problems:
        raise saferead.RefusedRead([problem_to_diagnostic(name, p) for p in loaded.problems])
    return loaded
