"""Reading a ``dvc.yaml`` as DVC 3 does: ``foreach`` groups expanded, and a stage's
params, deps and outs in the form :mod:`mllc.observe.pipeline` compares with the lock.

Anything DVC would read otherwise (``matrix``, repo or db deps, interpolation
beyond a foreach's ``${item}`` and ``${key}``) is an :class:`UnsupportedPipelineError`
rather than a guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_PARAMS_FILE = "params.yaml"  # dvc/dependency/param.py ParamsDependency


class UnsupportedPipelineError(ValueError):
    """The dvc.yaml uses a DVC feature this checker does not model (it would guess wrong)."""


# -- dvc.yaml: foreach expansion ------------------------------------------------------

# dvc/parsing/interpolate.py KEYCRE: "${...}" not preceded by a backslash.
_INTERPOLATION = re.compile(r"(?<!\\)\$\{(?P<inner>.*?)\}")
_PRIMITIVES = (str, bool, int, float)


def _to_str(value: Any) -> str:
    # dvc/parsing/interpolate.py to_str: booleans as YAML spells them.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _select(context: Mapping[str, Any], expr: str) -> Any:
    # "item.a[0]" -> item, a, 0 (dvc/parsing/interpolate.py normalize_key).
    head, *rest = expr.replace("[", ".").replace("]", "").split(".")
    if head not in context:
        raise UnsupportedPipelineError(
            f"${{{expr}}}: only ${{item}} and ${{key}} of a foreach are supported"
        )
    value = context[head]
    for part in rest:
        try:
            value = value[int(part)] if isinstance(value, list) else value[part]
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise UnsupportedPipelineError(f"${{{expr}}} does not resolve") from exc
    return value


def _resolve_str(text: str, context: Mapping[str, Any]) -> Any:
    matches = list(_INTERPOLATION.finditer(text))
    if len(matches) == 1 and matches[0].group(0) == text:
        return _select(context, matches[0]["inner"])  # "${item}" alone keeps its type
    parts: list[str] = []
    index = 0
    for match in matches:
        value = _select(context, match["inner"])
        if value is not None and not isinstance(value, _PRIMITIVES):
            raise UnsupportedPipelineError(f"cannot interpolate {type(value).__name__}: {text}")
        parts += [text[index : match.start()], _to_str(value)]
        index = match.end()
    parts.append(text[index:])
    return "".join(parts).replace("\\${", "${")  # str_interpolate unescapes "\${"


def _resolve(data: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(data, Mapping):
        return {_resolve(k, context): _resolve(v, context) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_resolve(v, context) for v in data]
    if isinstance(data, str):
        return _resolve_str(data, context)
    return data


def expand_stages(dvc_doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Stages by name in dvc.yaml order, ``foreach`` groups expanded to ``group@key``.

    ``${item}`` (and ``${key}`` for a dict ``foreach``, ``${item.field}`` for
    dict items) are substituted everywhere, mapping keys included, exactly as
    dvc/parsing/__init__.py ``ForeachDefinition`` names and resolves them.
    """
    expanded: dict[str, dict[str, Any]] = {}
    for name, definition in (dvc_doc.get("stages") or {}).items():
        if not isinstance(definition, Mapping):
            raise UnsupportedPipelineError(f"stage {name!r} is not a mapping")
        if "matrix" in definition:
            raise UnsupportedPipelineError(f"stage {name!r}: matrix is not supported")
        if "foreach" not in definition:
            expanded[name] = _resolve(definition, {})
            continue
        items = definition["foreach"]
        template = definition.get("do") or {}
        if isinstance(items, Mapping):
            keyed = [(_to_str(k), {"item": v, "key": _to_str(k)}) for k, v in items.items()]
        elif isinstance(items, list):
            # ForeachDefinition.normalized_iterable: a list of scalars is keyed
            # by its values, a list holding any dict/list by index.
            composite = any(isinstance(v, Mapping | list) for v in items)
            keyed = [
                (str(i) if composite else _to_str(v), {"item": v}) for i, v in enumerate(items)
            ]
        else:
            raise UnsupportedPipelineError(f"stage {name!r}: foreach must be a list or mapping")
        for key, context in keyed:
            expanded[f"{name}@{key}"] = _resolve(template, context)
    return expanded


# -- the pieces of one stage ------------------------------------------------------------


def merge_params(entries: Sequence[Any]) -> dict[str, list[str]]:
    """params file -> tracked keys ([] = the whole file), as dvc/dependency ``_merge_params``."""
    wholly = {
        path
        for entry in entries
        if isinstance(entry, Mapping)
        for path, keys in entry.items()
        if not keys
    }
    merged: dict[str, list[str]] = {}
    for entry in entries:
        if isinstance(entry, str):
            if DEFAULT_PARAMS_FILE not in wholly:
                merged.setdefault(DEFAULT_PARAMS_FILE, []).append(entry)
        elif isinstance(entry, Mapping):
            for path, keys in entry.items():
                if path in wholly:
                    merged[path] = []
                else:
                    merged.setdefault(path, []).extend(keys)
        else:
            raise UnsupportedPipelineError(f"params entry {entry!r}")
    return {path: list(dict.fromkeys(keys)) for path, keys in merged.items()}


def outs(stage: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """(path as written, cached?) for outs, metrics and plots, in that order (DVC's)."""
    result: list[tuple[str, bool]] = []
    for section in ("outs", "metrics", "plots"):
        for entry in stage.get(section) or []:
            if isinstance(entry, str):
                result.append((entry, True))
            elif isinstance(entry, Mapping):
                for path, flags in entry.items():
                    result.append((path, bool((flags or {}).get("cache", True))))
            else:
                raise UnsupportedPipelineError(f"{section} entry {entry!r}")
    return result


def deps(stage: Mapping[str, Any]) -> list[str]:
    deps = stage.get("deps") or []
    for dep in deps:
        if not isinstance(dep, str):  # repo/db/dataset deps are not modelled
            raise UnsupportedPipelineError(f"dep {dep!r}")
    return list(deps)
