"""Comparing two documents leaf by leaf, and saying what changed in a reason's words.

``leaf_diff`` walks the lifecycle record, params and environments; ``change_text``
turns each difference into ``path old → new``. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from mllc.observe.types import short_value


def leaf_diff(old: Any, new: Any, prefix: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(path, old, new) for every leaf that differs; a missing side is ``None``."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in new:
                yield path, old[key], None
            elif key not in old:
                yield path, None, new[key]
            else:
                yield from leaf_diff(old[key], new[key], path)
    elif (old != new or type(old) is not type(new)) and not _same_number(old, new):
        yield prefix, old, new


def _same_number(a: Any, b: Any) -> bool:
    """1 and 1.0 are the same value in YAML; True and 1 are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    return isinstance(a, int | float) and isinstance(b, int | float) and a == b


def _show(value: Any) -> str:
    return "(none)" if value is None else short_value(value)


def change_text(path: str, old: Any, new: Any) -> str:
    if old is None:
        return f"{path} added: {_show(new)}"
    if new is None:
        return f"{path} removed (was {_show(old)})"
    return f"{path} {_show(old)} → {_show(new)}"


def finite_numbers(data: Any) -> dict[str, float]:
    """The finite numbers of a JSON object (a metrics document), by name; {} for anything
    that is not an object. Booleans, strings, null, NaN and infinities are left out."""
    if not isinstance(data, Mapping):
        return {}
    return {
        str(k): float(v)
        for k, v in data.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }
