"""YAML 1.2 scalars with PyYAML's fast C parser: how DVC (ruamel) and modern tools read YAML.

Under PyYAML's default YAML 1.1 rules ``1e-05`` is a string, ``on`` is True and
``010`` is eight; under 1.2 they are a float, a string and ten. mllc reads specs,
params files and ``dvc.lock`` with these rules, and writes YAML that reads back
the same under both (:func:`ambiguous` says which strings need quotes).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import yaml

# PyYAML built without libyaml has no CSafeLoader: same results, slower.
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Yaml12Loader(_BaseLoader):  # type: ignore[misc]
    """PyYAML's C loader with YAML 1.2 core-schema scalars, as ruamel (DVC) resolves them.

    DVC reads params files and writes ``dvc.lock`` with ruamel in YAML 1.2, where
    ``yes``/``on`` are strings and ``1e-05`` is a float; PyYAML's default 1.1
    rules read a DVC-written ``lr: 1e-05`` as the string "1e-05" and ``on`` as
    True, which would make unchanged params look modified.
    """


Yaml12Loader.yaml_implicit_resolvers = {}
# ruamel/yaml/resolver.py `implicit_resolvers`, the (1, 2) entries, in its order.
for _tag, _regexp, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (
        "float",
        r"""^(?:
         [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        "-+0123456789.",
    ),
    (
        "int",
        r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)$""",
        "-+0123456789",
    ),
    ("merge", r"^(?:<<)$", "<"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (
        "timestamp",
        r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
        (?:[Tt]|[ \t]+)[0-9][0-9]?
        :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
        (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""",
        "0123456789",
    ),
    ("value", r"^(?:=)$", "="),  # unconstructible in both: a plain "=" is an error
):
    Yaml12Loader.add_implicit_resolver(
        f"tag:yaml.org,2002:{_tag}", re.compile(_regexp, re.X), list(_first)
    )


def _construct_int12(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    # ruamel SafeConstructor.construct_yaml_int under 1.2: "010" is ten, "0o10" eight.
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    if not text.lstrip("+-"):
        raise ValueError("an integer needs digits")
    sign = -1 if text[0] == "-" else 1
    text = text.lstrip("+-")
    for prefix, base in (("0b", 2), ("0x", 16), ("0o", 8)):
        if text.startswith(prefix):
            return sign * int(text[2:], base)
    return sign * int(text)


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int12)


def load_yaml(text: str) -> Any:
    """Parse YAML as DVC does (YAML 1.2 scalars), with the fast C loader.

    Use it for params files too: values must be read the way DVC reads them
    for the comparison with ``dvc.lock`` to mean what ``dvc status`` means.
    """
    return yaml.load(text, Loader=Yaml12Loader)  # a SafeLoader subclass: no arbitrary objects


@functools.lru_cache(maxsize=8192)  # compile asks for every string it writes: paths repeat
def ambiguous(text: str) -> bool:
    """True when a plain ``text`` would not read back as that string under YAML 1.2."""
    try:
        return not isinstance(load_yaml(text), str)
    except yaml.YAMLError:
        return True
