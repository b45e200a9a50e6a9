"""A fast writer of the YAML that :func:`mllc.compile.dump_yaml` writes, byte for byte.

``mllc plan`` compiles every spec to compare the generated files with the checkout,
and PyYAML's pure-Python emitter was half of a no-op plan's time. Generated files are
plain data (mappings with string keys, lists, strings, numbers, booleans, null), so
this writes them directly, in the layout of :class:`mllc.compile._Dumper` (block
style, lists indented under their key, two spaces). A scalar is written here only
when its form is certain: plain when PyYAML would write it plain (a conservative
character set, and PyYAML's YAML 1.1 resolver and :func:`mllc.yaml12.ambiguous` both
read it back as the string); any other single-line string is rendered by PyYAML
itself, once per distinct value. Anything else (a line break, a long key, a list in a
list, a key that is not a string) returns None, and the caller uses PyYAML for the
whole document. ``tests/test_emit.py`` compares both writers on every golden spec and
on hostile values.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Any

import yaml

from mllc.yaml12 import ambiguous

# No ':' or '#' (": " and " #" end a plain scalar), single spaces only inside.
_PLAIN = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./@${}+=-]*(?: [A-Za-z0-9_./@${}+=-]+)*")
_RESOLVER = yaml.resolver.Resolver()
_STR = "tag:yaml.org,2002:str"


def _resolved(text: str) -> str:
    """The tag PyYAML's (YAML 1.1) resolver gives a plain ``text``."""
    tag: str = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return tag


MAX_KEY = 100  # PyYAML writes a key over 128 characters as a complex key ("? ")


class _Fallback(Exception):
    """The document has something this writer does not do: PyYAML writes it."""


def emit(data: Any, *, sort_keys: bool, scalar: Callable[[str], str]) -> str | None:
    """``data`` as :func:`mllc.compile.dump_yaml` writes it, or None (use PyYAML).
    ``scalar`` renders one string the way PyYAML does (see :func:`quoted_by`)."""
    if type(data) is not dict or not data:
        return None
    out: list[str] = []
    try:
        _mapping(data, 0, out, sort_keys, scalar, first_prefix="")
    except _Fallback:
        return None
    return "".join(out)


def _text(value: Any, scalar: Callable[[str], str]) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:  # exact types: PyYAML's SafeDumper refuses subclasses (enums)
        return str(value)
    if type(value) is float:
        return _float(value)
    if type(value) is str:
        return _string(value, scalar)
    raise _Fallback


def _float(value: float) -> str:
    # yaml.representer.SafeRepresenter.represent_float
    if math.isnan(value) or math.isinf(value):
        raise _Fallback
    text = repr(value).lower()
    if "." not in text and "e" in text:
        text = text.replace("e", ".0e", 1)
    if _resolved(text) != "tag:yaml.org,2002:float":
        raise _Fallback
    return text


@functools.lru_cache(maxsize=8192)
def _plain(value: str) -> bool:
    return _PLAIN.fullmatch(value) is not None and _resolved(value) == _STR and not ambiguous(value)


def _string(value: str, scalar: Callable[[str], str]) -> str:
    if _plain(value):
        return value
    if any(c in value for c in "\n\r\x85\u2028\u2029") or not value.isprintable():
        raise _Fallback
    return scalar(value)


def _key(key: Any, scalar: Callable[[str], str]) -> str:
    if type(key) is not str or not key:  # PyYAML writes an empty key as a complex one
        raise _Fallback
    text = _string(key, scalar)
    if len(text) > MAX_KEY:
        raise _Fallback
    return text


def _mapping(
    data: dict[Any, Any],
    indent: int,
    out: list[str],
    sort_keys: bool,
    scalar: Callable[[str], str],
    first_prefix: str,
) -> None:
    """A block mapping at ``indent``; its first line starts with ``first_prefix`` instead
    of the indent (the ``- `` of a list item)."""
    items = sorted(data.items(), key=lambda kv: _sort_key(kv[0])) if sort_keys else data.items()
    pad = " " * indent
    for i, (key, value) in enumerate(items):
        start = first_prefix if i == 0 and first_prefix else pad
        head = f"{start}{_key(key, scalar)}:"
        if type(value) is dict and value:
            out.append(head + "\n")
            _mapping(value, indent + 2, out, sort_keys, scalar, first_prefix="")
        elif type(value) is list and value:
            out.append(head + "\n")
            _sequence(value, indent + 2, out, sort_keys, scalar)
        elif type(value) is dict:
            out.append(head + " {}\n")
        elif type(value) is list:
            out.append(head + " []\n")
        else:
            out.append(f"{head} {_text(value, scalar)}\n")


def _sequence(
    data: list[Any], indent: int, out: list[str], sort_keys: bool, scalar: Callable[[str], str]
) -> None:
    pad = " " * indent
    for item in data:
        if type(item) is dict and item:
            _mapping(item, indent + 2, out, sort_keys, scalar, first_prefix=pad + "- ")
        elif type(item) is list and item:
            raise _Fallback
        elif type(item) is dict:
            out.append(f"{pad}- {{}}\n")
        elif type(item) is list:
            out.append(f"{pad}- []\n")
        else:
            out.append(f"{pad}- {_text(item, scalar)}\n")


def _sort_key(key: Any) -> Any:
    if type(key) is not str:
        raise _Fallback
    return key


def quoted_by(dump: Callable[[Any], str]) -> Callable[[str], str]:
    """A cached renderer of one string, from PyYAML's own ``dump`` of ``{"k": value}``."""

    @functools.lru_cache(maxsize=8192)
    def render(value: str) -> str:
        text = dump({"k": value})
        if not text.startswith("k: ") or text.count("\n") != 1:
            raise _Fallback
        return text[3:-1]

    return render
