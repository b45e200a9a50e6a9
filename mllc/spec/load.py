"""Load and validate spec files: YAML -> positions -> models + rules -> diagnostics.

``load_file`` never raises for a bad spec: it returns every problem as a
:class:`~mllc.errors.Diagnostic` with file, line, column and field path.
"""

from __future__ import annotations

import difflib  # lazily: only on the error path
import os
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from mllc import saferead
from mllc.errors import Diagnostic, sort_diagnostics
from mllc.spec import rules, vocab
from mllc.spec.cluster import problems
from mllc.spec.models import Lifecycle
from mllc.spec.yamlsafe import Loaded, Positions, YamlProblem, load_text, problem_to_diagnostic

Path = tuple[str | int, ...]
SPEC_SUFFIXES = (".yaml", ".yml")
CONFIG_FILE = "mllc.toml"


@dataclass(frozen=True)
class LoadResult:
    file: str
    spec: Lifecycle | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return self.spec is not None and not self.diagnostics


def format_path(path: Sequence[str | int]) -> str:
    """``("data", "columns", "petal length (cm)")`` -> ``data.columns["petal length (cm)"]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.replace("_", "").replace("-", "").isalnum() and part[:1].isalpha():
            out += f".{part}" if out else part
        else:
            out += '["' + part.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return out


# ------------------------------------------------------------ config


def find_config(start: FsPath) -> FsPath | None:
    for folder in [start, *start.parents]:
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
        if (folder / ".git").exists():
            return None
    return None


def load_estimators(config: FsPath | None) -> tuple[dict[str, str], list[Diagnostic]]:
    """The estimator allow-list, extended by ``[estimators]`` in mllc.toml."""
    allowed: dict[str, str] = dict(vocab.ESTIMATORS)
    if config is None:
        return allowed, []

    try:
        data = tomllib.loads(saferead.read_text(config, shown=str(config)) or "")
    except saferead.RefusedRead as exc:
        return allowed, list(exc.diagnostics)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return allowed, [Diagnostic(str(config), 1, 1, "", f"cannot read: {exc}", "config")]
    section = data.get("estimators", {})
    problems = []
    for task in ("classification", "regression"):
        names = section.get(task, []) if isinstance(section, dict) else None
        if not isinstance(names, list) or not all(
            isinstance(n, str)
            and n.count(".") >= 1
            and n.replace(".", "").replace("_", "").isalnum()
            for n in names
        ):
            problems.append(
                Diagnostic(
                    str(config),
                    1,
                    1,
                    f"estimators.{task}",
                    "must be a list of dotted class names",
                    "config",
                )
            )
            continue
        allowed.update({n: task for n in names})
    return allowed, problems


# ------------------------------------------------------------ pydantic -> diagnostics


def _unwrap(tp: Any) -> Any:
    """Optional[X] -> X, Annotated[X, ...] -> X."""
    while True:
        origin = get_origin(tp)
        if origin is None:
            return tp
        args = [a for a in get_args(tp) if a is not type(None)]
        if origin in (list, dict):
            return tp
        if len(args) >= 1 and (str(origin).endswith("Annotated") or len(args) == 1):
            tp = args[0]
            continue
        return tp


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class whose fields live at ``loc`` (for "did you mean")."""
    current: Any = Lifecycle
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) in (list, dict):
            current = get_args(current)[-1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _from_pydantic(file: str, exc: ValidationError, pos: Positions) -> Iterable[Diagnostic]:
    for err in exc.errors(include_url=False):
        loc: list[str | int] = [p for p in err["loc"]]
        kind = err["type"]
        hint = None
        if loc and loc[-1] == "[key]":  # a dict key failed validation: point at the key
            loc.pop()
            line, col = pos.of_key(tuple(loc))
        elif kind == "extra_forbidden":
            line, col = pos.of_key(tuple(loc))
            model = _model_at(loc[:-1])
            if model is not None:
                close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
                if close:
                    hint = f"did you mean {close[0]!r}?"
        else:
            line, col = pos.of_value(tuple(loc))
            if kind == "missing":
                line, col = pos.of_key(tuple(loc[:-1])) if loc[:-1] else (line, col)
        msg = _message(err)
        if kind == "literal_error" and isinstance(err.get("input"), str):
            expected = re.findall(r"'([^']*)'", str(err["ctx"]["expected"]))

            close = difflib.get_close_matches(err["input"], expected, n=1)
            if close:
                hint = f"did you mean {close[0]!r}?"
        yield Diagnostic(file, line, col, format_path(loc), msg, _code(kind), hint)


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def _code(kind: str) -> str:
    if kind == "extra_forbidden":
        return "unknown-key"
    if kind == "missing":
        return "missing"
    if kind in ("value_error", "assertion_error"):
        return "invalid"
    return "type" if kind.endswith("_type") or kind.endswith("_parsing") else "invalid"


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"unknown key {str(err['loc'][-1])!r}"
    if kind == "missing":
        return "required field is missing"
    msg = str(err["msg"])
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping (got {_short(err.get('input'))})"
    if kind == "too_short" and isinstance(err.get("input"), dict | list):
        return "must not be empty"
    msg = msg[:1].lower() + msg[1:]
    inp = err.get("input")
    if (not isinstance(inp, dict | list) and kind != "literal_error") or kind == "literal_error":
        msg += f" (got {_short(inp)})"
    return msg


# ------------------------------------------------------------ entry points


def validate_data(
    file: str,
    data: Any,
    positions: Positions,
    estimators: dict[str, str] | None = None,
) -> LoadResult:
    allowed: dict[str, str] = dict(vocab.ESTIMATORS) if estimators is None else estimators
    diags: list[Diagnostic] = []
    spec: Lifecycle | None = None
    if not isinstance(data, dict):
        message = (
            "the file is empty: a spec is a mapping (apiVersion, kind, metadata, ...)"
            if data is None
            else f"a spec is a mapping (apiVersion, kind, metadata, ...), not a {_kind(data)}"
        )
        diags.append(Diagnostic(file, *positions.of_value(()), "", message))
        return LoadResult(file, None, tuple(diags))
    try:
        spec = Lifecycle.model_validate(data, context={"estimators": allowed})
    except ValidationError as exc:
        diags.extend(_from_pydantic(file, exc, positions))
    for path, message in rules.check(data, allowed):
        diags.append(Diagnostic(file, *positions.of_value(path), format_path(path), message))
    if spec is not None and any(e.target == "kubernetes" for e in spec.environments.values()):
        # Names a cluster would refuse (too long once KServe derives its own from them).

        for env, cfg in spec.environments.items():
            if cfg.target == "kubernetes":
                path = ("environments", env)
                diags += [
                    Diagnostic(file, *positions.of_value(path), format_path(path), m, "kubernetes")
                    for m in problems(spec, env)
                ]
    diags = sort_diagnostics(diags)
    return LoadResult(file, spec if not diags else None, tuple(diags))


def load_text_as_spec(file: str, text: str, estimators: dict[str, str] | None = None) -> LoadResult:
    try:
        loaded: Loaded = load_text(text)
    except YamlProblem as problem:
        return LoadResult(file, None, (problem_to_diagnostic(file, problem),))
    if loaded.problems:  # the data is incomplete: report what is wrong with the YAML only
        diags = sort_diagnostics(problem_to_diagnostic(file, p) for p in loaded.problems)
        return LoadResult(file, None, tuple(diags))
    return validate_data(file, loaded.data, loaded.positions, estimators)


def load_file(path: str | os.PathLike[str], estimators: dict[str, str] | None = None) -> LoadResult:
    name = os.fspath(path)
    try:  # inside the repository, a regular file, capped on stat: refused before parsing
        raw = saferead.read_bytes(name, shown=name)
    except saferead.RefusedRead as exc:
        return LoadResult(name, None, exc.diagnostics)
    except OSError as exc:
        return LoadResult(name, None, (Diagnostic(name, 0, 0, "", f"cannot read: {exc.strerror}"),))
    if raw is None:
        return LoadResult(name, None, (Diagnostic(name, 0, 0, "", "cannot read: no such file"),))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        return LoadResult(name, None, (Diagnostic(name, line, 1, "", "file is not UTF-8", "yaml"),))
    return load_text_as_spec(name, text, estimators)


def under_root(root: str | os.PathLike[str], paths: Sequence[str]) -> list[str]:
    """Spec paths as the API takes them: a relative path is relative to ``root`` (the
    repository), never to the process's current directory."""
    base = FsPath(root)
    return [p if FsPath(p).is_absolute() else (base / p).as_posix() for p in paths]


def discover(paths: Sequence[str]) -> tuple[list[str], list[Diagnostic]]:
    """Spec files under ``paths`` (files as given, folders searched for *.yaml/*.yml)."""
    files: list[str] = []
    problems: list[Diagnostic] = []
    for p in paths:
        fp = FsPath(p)
        if fp.is_dir():
            try:  # a folder linked outside the repository: not even its file names are read
                saferead.check(p, saferead.confinement_root(p), shown=p, directories=True)
            except saferead.RefusedRead as exc:
                problems.extend(exc.diagnostics)
                continue
            # Not only regular files: a FIFO or a device named *.yaml is an error load_file
            # reports (without opening it), not a spec silently skipped.
            found = sorted(
                str(f) for f in fp.rglob("*") if f.suffix in SPEC_SUFFIXES and not f.is_dir()
            )
            files.extend(found)
        elif fp.exists() or fp.is_symlink():
            files.append(p)
        else:
            hint = (
                "to start here, run 'mllc init': it creates specs/ with an example spec"
                if fp.name == "specs"
                else None
            )
            problems.append(Diagnostic(p, 0, 0, "", "no such file or directory", "usage", hint))
    return files, problems


def load_all(paths: Sequence[str]) -> tuple[list[LoadResult], list[Diagnostic]]:
    """Validate every spec under ``paths``; also checks that names are unique."""
    files, problems = discover(paths)
    config = find_config(FsPath(files[0]).resolve().parent) if files else None
    estimators, config_problems = load_estimators(config)
    problems.extend(config_problems)
    results = [load_file(f, estimators) for f in files]
    owners: dict[str, str] = {}
    for i, res in enumerate(results):
        if res.spec is None:
            continue
        name = res.spec.metadata.name
        if name in owners:
            loaded = load_text(saferead.read_text(res.file, shown=res.file) or "")
            line, col = loaded.positions.of_value(("metadata", "name"))
            dup = Diagnostic(
                res.file,
                line,
                col,
                "metadata.name",
                f"lifecycle {name!r} is already defined in {owners[name]}",
                "duplicate-name",
            )
            results[i] = LoadResult(res.file, None, (dup,))
        else:
            owners[name] = res.file
    return results, problems
