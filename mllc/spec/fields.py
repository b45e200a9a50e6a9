"""Field types and validators shared by the spec's sections, and their base model.

Each type's validator gives the error message; its ``WithJsonSchema`` tells editors
the same rule in ``schemas/lifecycle.v1.json``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, JsonValue, WithJsonSchema

from mllc.names import DNS_LABEL_MAX, DNS_LABEL_PATTERN, is_dns_label

_GATE = re.compile(
    r"^\s*([a-z_0-9]+)\s*(>=|<=|>|<)\s*([-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*$", re.ASCII
)
_SECRET_REF = re.compile(r"^env:[A-Za-z_][A-Za-z0-9_]*$", re.ASCII)


def raise_first(problems: list[str]) -> None:
    """Raise the first problem a section check found (rules report the rest)."""
    if problems:
        raise ValueError(problems[0])


def _dns_label(value: str) -> str:
    if len(value) > DNS_LABEL_MAX:
        raise ValueError(f"{value!r} is longer than {DNS_LABEL_MAX} characters")
    if not is_dns_label(value):
        raise ValueError(
            f"{value!r} is not a lowercase DNS label (a-z, 0-9 and '-', starting with a "
            "letter, not ending with '-'): names become DVC stages, Kubernetes objects "
            "and file names"
        )
    return value


def _repo_path(value: str) -> str:  # messages quote the path as written, not as a repr
    if not value or value.strip() != value:
        raise ValueError("a path must be non-empty, without leading or trailing spaces")
    if "\x00" in value:
        raise ValueError("a path must not contain a NUL character")
    if value.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", value):
        raise ValueError(f"'{value}' must be relative to the repository root")
    if "\\" in value:
        raise ValueError(f"'{value}': use '/' as the separator")
    if ".." in value.split("/"):
        raise ValueError(f"'{value}' must stay inside the repository (no '..')")
    if any(c in value for c in "\n\r\t"):
        raise ValueError(f"'{value}' must not contain control characters")
    return value


def _secret_ref(value: str) -> str:
    if not _SECRET_REF.fullmatch(value):
        raise ValueError(
            "secrets are given by reference only, as 'env:NAME' (an environment "
            "variable's name), never as a value"
        )
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


def parse_gate(text: str) -> tuple[str, str, float]:
    """``"accuracy >= 0.9"`` -> ``("accuracy", ">=", 0.9)``; ValueError when malformed."""
    m = _GATE.fullmatch(text)
    if not m:
        raise ValueError(
            f"{text!r} is not a gate: write 'METRIC OP NUMBER' with OP one of >= <= > <, "
            "e.g. 'accuracy >= 0.9'"
        )
    return m.group(1), m.group(2), float(m.group(3))


def _gate(value: str) -> str:
    parse_gate(value)
    return value


# The validators give the messages; WithJsonSchema tells editors the same rule.
DnsLabel = Annotated[
    str,
    AfterValidator(_dns_label),
    WithJsonSchema({"type": "string", "pattern": DNS_LABEL_PATTERN, "maxLength": DNS_LABEL_MAX}),
]
RepoPath = Annotated[
    str,
    AfterValidator(_repo_path),
    WithJsonSchema({"type": "string", "pattern": r"^(?![/~])(?!.*(^|/)\.\.(/|$))[^\\\x00]+$"}),
]
SecretRef = Annotated[
    str,
    AfterValidator(_secret_ref),
    WithJsonSchema({"type": "string", "pattern": _SECRET_REF.pattern}),
]
Text = Annotated[str, AfterValidator(_no_nul)]
Gate = Annotated[
    str, AfterValidator(_gate), WithJsonSchema({"type": "string", "pattern": _GATE.pattern})
]


class Strict(BaseModel):
    # strict: "8081" is not a port and "yes" not a boolean (the JSON Schema agrees);
    # no NaN or infinity anywhere: they do not survive JSON.
    model_config = ConfigDict(
        extra="forbid", frozen=True, defer_build=True, strict=True, allow_inf_nan=False
    )


def within_64_bits(value: Any) -> Any:
    """No integer past 64 bits anywhere inside (the YAML loader refuses them too)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) >= 2**63:
            raise ValueError("an integer must fit in 64 bits")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


ParamValue = Annotated[JsonValue, AfterValidator(within_64_bits)]
