"""Checking a column against its declaration (``data.columns``): parse, range, categories.

Each check is vectorised over the whole column and returns the parsed values
together with two row masks, *missing* and *invalid*, and for every invalid
value the reason, so ``prepare`` can apply the cleaning policy and explain a
failure row by row. A value is *missing* when it is NaN/None or empty text; a
missing value is also *invalid* when the column says ``nullable: false``.

Parsed dtypes are chosen to survive Parquet and to feed scikit-learn without
``pd.NA`` (which its imputers do not treat as missing): int columns are
``int64`` once no missing value remains in the kept rows (``float64`` with NaN
otherwise), bool columns likewise ``bool`` or ``float64`` 0/1/NaN, category
columns are pandas ``category`` (the declared values, in order, as text) and
string columns stay text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mllc.spec.training import Column

TRUE_TEXT = ("true", "1", "yes")
FALSE_TEXT = ("false", "0", "no")


@dataclass(frozen=True)
class Checked:
    values: Any  # pandas.Series: the parsed values, NaN where missing or invalid
    missing: Any  # pandas.Series[bool]
    invalid: Any  # pandas.Series[bool]
    reasons: Any  # pandas.Series[str]: why each invalid value is invalid ("" when valid)


def missing_mask(series: Any) -> Any:
    """NaN/None, or text that is empty once stripped."""
    import pandas as pd

    mask = series.isna().astype(bool)
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        blank = series.map(lambda v: isinstance(v, str) and not v.strip()).astype(bool)
        mask = mask | blank
    return mask


def as_text(value: Any) -> str:
    """A source value as the text a category or bool is matched on."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))  # 3.0 read from Parquet matches the category "3"
    return str(value)


def check(column: Column, series: Any) -> Checked:
    """Parse ``series`` (a source column) as ``column`` declares it."""
    import pandas as pd

    missing = missing_mask(series)
    present = ~missing
    if column.type in ("int", "float"):
        values, reasons = _numeric(column, series, present)
    elif column.type == "category":
        values, reasons = _category(column, series, present)
    elif column.type == "bool":
        values, reasons = _bool(series, present)
    else:
        values = series.astype(object).where(present, np.nan)
        reasons = pd.Series("", index=series.index, dtype=object)
    if not column.nullable:
        reasons = reasons.where(present, "is missing (nullable: false)")
    invalid = (reasons != "").astype(bool)
    return Checked(values.where(~invalid), missing, invalid, reasons)


def _numeric(column: Column, series: Any, present: Any) -> tuple[Any, Any]:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        number = series.astype("float64")
        unreadable = pd.Series(False, index=series.index)
    else:
        text = series.where(present, "").map(as_text)
        number = pd.to_numeric(text.where(present, None), errors="coerce").astype("float64")
        unreadable = present & number.isna()
    infinite = present & ~unreadable & ~np.isfinite(number.fillna(0.0))
    reasons = pd.Series("", index=series.index, dtype=object)
    shown = series.astype(str)
    what = "a whole number" if column.type == "int" else "a number"
    reasons = reasons.mask(unreadable | infinite, "'" + shown + f"' is not {what}")
    ok = present & ~unreadable & ~infinite
    if column.type == "int":
        fraction = ok & (number % 1 != 0)
        reasons = reasons.mask(fraction, "'" + shown + "' is not a whole number")
        ok &= ~fraction
    if column.min is not None:
        low = ok & (number < column.min)
        reasons = reasons.mask(low, "'" + shown + f"' is below min {column.min:g}")
        ok &= ~low
    if column.max is not None:
        high = ok & (number > column.max)
        reasons = reasons.mask(high, "'" + shown + f"' is above max {column.max:g}")
    return number.where(present & (reasons == ""), np.nan), reasons


def _category(column: Column, series: Any, present: Any) -> tuple[Any, Any]:
    import pandas as pd

    text = series.where(present, "").map(as_text).where(present, None)
    reasons = pd.Series("", index=series.index, dtype=object)
    if column.values is None:
        values = pd.Series(pd.Categorical(text.where(present, np.nan)), index=series.index)
        return values, reasons
    # The declared values, as text; a YAML 1.1 ``yes``/``no`` arrives as a bool and
    # then matches any of the bool spellings, case-insensitively.
    allowed = [as_text(v) for v in column.values]
    lookup = {a: a for a in allowed}
    for v in column.values:
        if isinstance(v, bool):
            for spelling in TRUE_TEXT if v else FALSE_TEXT:
                lookup.setdefault(spelling, as_text(v))
    matched = text.map(
        lambda t: lookup.get(t, lookup.get(t.lower())) if isinstance(t, str) else None
    )
    unknown = present & matched.isna()
    listed = ", ".join(allowed)
    reasons = reasons.mask(unknown, "'" + series.astype(str) + f"' is not one of {listed}")
    values = pd.Series(pd.Categorical(matched, categories=allowed), index=series.index)
    return values, reasons


def _bool(series: Any, present: Any) -> tuple[Any, Any]:
    import pandas as pd

    lookup = {**dict.fromkeys(TRUE_TEXT, 1.0), **dict.fromkeys(FALSE_TEXT, 0.0)}
    text = series.where(present, "").map(as_text).str.lower()
    number = text.map(lookup).astype("float64")
    unknown = present & number.isna()
    reasons = pd.Series("", index=series.index, dtype=object)
    reasons = reasons.mask(
        unknown, "'" + series.astype(str) + "' is not a bool (true/false, 1/0, yes/no)"
    )
    return number.where(present, np.nan), reasons


def settle_dtype(column: Column | None, values: Any) -> Any:
    """The kept rows' final dtype: int64/bool when nothing is missing, else float64 with NaN."""
    if column is None:
        return values
    if column.type == "int" and not values.isna().any():
        return values.astype("int64")
    if column.type == "bool" and not values.isna().any():
        return values.astype(bool)
    if column.type == "string":
        return values.astype(object)
    return values
