"""The spec language explained from the models themselves.

* :func:`json_schema` - the JSON Schema written to ``schemas/lifecycle.v1.json``;
* :func:`markdown` - ``docs/spec.md``, the field reference
  (``python -m mllc.spec.reference docs/spec.md`` regenerates it);
* :func:`explain` - ``mllc explain data.split.test``.

One walk over the models serves all three, so the documentation cannot drift
from what validation accepts.
"""

from __future__ import annotations

import difflib
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from mllc.errors import MllcError
from mllc.spec import vocab
from mllc.spec.models import API_VERSION, Lifecycle


def json_schema() -> dict[str, Any]:
    schema = Lifecycle.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "mllc Lifecycle spec (mllc/v1)",
        **{k: v for k, v in schema.items() if k != "title"},
    }


@dataclass(frozen=True)
class FieldDoc:
    path: str
    type_name: str
    required: bool
    default: str
    description: str
    model: type[BaseModel] | None  # the nested model, when the field holds one (or a map of them)


def _strip(tp: Any) -> Any:
    if get_origin(tp) is Annotated:
        return get_args(tp)[0]
    return tp


def _nested(tp: Any) -> tuple[type[BaseModel] | None, str]:
    """(model inside the type, path suffix: '' for X, '.<name>' for dict[str, X], '[]' list)."""
    tp = _strip(tp)
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            model, suffix = _nested(arg)
            if model is not None:
                return model, suffix
        return None, ""
    if origin is dict:
        model, _ = _nested(get_args(tp)[1])
        return model, ".<name>"
    if origin is list:
        model, _ = _nested(get_args(tp)[0])
        return model, "[]"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp, ""
    return None, ""


def type_name(tp: Any) -> str:
    tp = _strip(tp)
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(str(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        names = [type_name(a) for a in get_args(tp) if a is not type(None)]
        return " | ".join(names)
    if origin is list:
        item = type_name(get_args(tp)[0])
        return f"list of ({item})" if " | " in item else f"list of {item}"
    if origin is dict:
        return f"map of name → {type_name(get_args(tp)[1])}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "mapping"
    if isinstance(tp, type) and issubclass(tp, Enum):
        return " | ".join(str(m.value) for m in tp)
    if tp is float:
        return "number"
    if tp is int:
        return "integer"
    if tp is bool:
        return "boolean"
    if tp is str:
        return "string"
    name = getattr(tp, "__name__", None) or str(tp)
    return "any value" if "JsonValue" in name else name


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return "(defaults below)"
        return "{}" if value == {} else "[]" if value == [] else repr(value)
    if info.default is PydanticUndefined:
        return ""
    if info.default is None:
        return "none"
    return str(info.default).lower() if isinstance(info.default, bool) else str(info.default)


def _annotations(model: type[BaseModel]) -> dict[str, Any]:
    """Each field's type, resolved: Pydantic keeps a type it could not evaluate when
    the class was made as a ``ForwardRef`` string, which is no name for a user."""
    hints: dict[str, Any] = {}
    for klass in reversed(model.__mro__):
        try:
            hints.update(typing.get_type_hints(klass, include_extras=True))
        except (NameError, TypeError):
            continue
    return {
        name: hints.get(name, info.annotation)
        if isinstance(info.annotation, typing.ForwardRef) or info.annotation is None
        else info.annotation
        for name, info in model.model_fields.items()
    }


def walk(model: type[BaseModel] = Lifecycle, prefix: str = "") -> Iterator[FieldDoc]:
    annotations = _annotations(model)
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        annotation = annotations[name]
        nested, suffix = _nested(annotation)
        doc = info.description or (nested.__doc__ or "" if nested else "")
        yield FieldDoc(
            path=path,
            type_name=type_name(annotation),
            required=info.is_required(),
            default=_default(info),
            description=" ".join(doc.split()),
            model=nested,
        )
        if nested is not None and suffix == ".<name>":
            yield FieldDoc(
                path=path + suffix,
                type_name="mapping",
                required=False,
                default="",
                description=" ".join((nested.__doc__ or "").split()),
                model=nested,
            )
        if nested is not None:
            yield from walk(nested, path + suffix)


def explain(path: str) -> str:
    """Text for ``mllc explain PATH``: the field and, for a section, its fields."""
    docs = list(walk())
    wanted = path.strip().strip(".")
    if not wanted:
        lines = [f"A lifecycle spec ({API_VERSION}) has these top-level fields:", ""]
        lines += [_line(d) for d in docs if "." not in d.path]
        return "\n".join(lines)
    normal = wanted.replace("[]", "").split(".")
    for d in docs:
        parts = [p for p in d.path.replace("[]", "").split(".") if p != "<name>"]
        given = [p for p in normal if p != "<name>"]
        if parts == given or _matches_named(d.path, wanted):
            lines = [
                f"{d.path}: {d.type_name}" + (" (required)" if d.required else ""),
                f"  {d.description}" if d.description else "",
            ]
            if d.default and not d.required:
                lines.append(f"  default: {d.default}")
            extra = _vocabulary(d.path)
            if extra:
                lines.append(f"  {extra}")
            children = [
                c
                for c in docs
                if c.path.startswith(d.path + ".") or c.path.startswith(d.path + "[]")
            ]
            direct = [
                c for c in children if "." not in c.path[len(d.path) + 1 :].replace("<name>.", "")
            ]
            if direct:
                lines += ["", "fields:"] + ["  " + _line(c) for c in direct]
            return "\n".join(line for line in lines if line is not None)

    close = difflib.get_close_matches(wanted, [d.path for d in docs], n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise MllcError(f"no field {wanted!r} in the spec language{hint}")


def _matches_named(doc_path: str, wanted: str) -> bool:
    """``models.forest.params`` matches ``models.<name>.params``."""
    a, b = doc_path.split("."), wanted.split(".")
    return len(a) == len(b) and all(x == y or x == "<name>" for x, y in zip(a, b, strict=True))


def _line(d: FieldDoc) -> str:
    req = "required" if d.required else f"default {d.default}" if d.default else "optional"
    return f"{d.path}  ({d.type_name}; {req})  {d.description}".rstrip()


def _vocabulary(path: str) -> str:
    if path == "models.<name>.estimator":
        return f"allowed: {len(vocab.ESTIMATORS)} scikit-learn classes (see docs/spec.md)"
    return ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown() -> str:
    docs = list(walk())
    out = [
        "<!-- generated by `python -m mllc.spec.reference docs/spec.md` - do not edit -->",
        "# The lifecycle spec reference (mllc/v1)",
        "",
        "Every field of a spec, generated from the models that validate it. Unknown keys",
        "are errors. `<name>` stands for a name you choose (a lowercase DNS label).",
        "Run `mllc explain FIELD` for the same text in a terminal, and see",
        "[`schemas/lifecycle.v1.json`](../schemas/lifecycle.v1.json) for the JSON Schema.",
        "",
    ]
    sections = [d for d in docs if "." not in d.path]
    for top in sections:
        out += [f"## `{top.path}`", "", top.description, ""]
        rows = [
            d
            for d in docs
            if d.path == top.path
            or d.path.startswith(top.path + ".")
            or d.path.startswith(top.path + "[]")
        ]
        out += ["| field | type | default | description |", "|---|---|---|---|"]
        for d in rows:
            default = "**required**" if d.required else f"`{d.default}`" if d.default else ""
            out.append(
                f"| `{d.path}` | {_cell(d.type_name)} | {_cell(default)} | {_cell(d.description)} |"
            )
        out.append("")
    out += [
        "## Metrics",
        "",
        "| task | metric | better when |",
        "|---|---|---|",
    ]
    for task, metrics in vocab.METRICS.items():
        for m, higher in metrics.items():
            out.append(f"| {task} | `{m}` | {'higher' if higher else 'lower'} |")
    out += [
        "",
        "## Gates",
        "",
        "A gate is `METRIC OP NUMBER`, with `OP` one of `>=`, `<=`, `>`, `<`, e.g.",
        "`accuracy >= 0.9`. The metric must belong to the task. Gates are evaluated on",
        "the held-out test split.",
        "",
        "## Estimators",
        "",
        "`models.<name>.estimator` names one of these scikit-learn classes. A repository",
        "extends the list in `mllc.toml`:",
        "",
        "```toml",
        "[estimators]",
        'classification = ["mypkg.models.MyClassifier"]',
        'regression = ["mypkg.models.MyRegressor"]',
        "```",
        "",
        "| estimator | task |",
        "|---|---|",
    ]
    out += [f"| `{name}` | {task} |" for name, task in sorted(vocab.ESTIMATORS.items())]
    out += [
        "",
        "## Bundled datasets",
        "",
        "| `data.source.sklearn` | task |",
        "|---|---|",
    ]
    out += [f"| `{name}` | {task} |" for name, task in vocab.SKLEARN_DATASETS.items()]
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover - exercised by the docs staleness test
    text = markdown()
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
