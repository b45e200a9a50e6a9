"""The Jinja2 environment every page for people is rendered with (the monitoring
report, the model card): autoescape on, undefined names are errors, and every printed
value passes :func:`escape` first.
"""

from __future__ import annotations

import html
import re

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

# C0 controls but tab, newline and carriage return (HTML's whitespace), and DEL: no page
# needs them, and markupsafe would print them as they are.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def escape(value: object) -> object:
    """The environment's finalize: text escaped by :func:`html.escape` (``quote=True``:
    ``"`` and ``'`` spelled ``&quot;`` and ``&#x27;``, where markupsafe writes ``&#34;``
    and ``&#39;``) with control characters dropped; Markup (a macro's output) and
    non-text values go through as they are (the autoescape leaves Markup alone)."""
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    return Markup(html.escape(_CONTROLS.sub("", value), quote=True))


def environment(package: str) -> Environment:
    """An environment loading ``package``'s ``templates/`` folder."""
    return Environment(
        loader=PackageLoader(package, "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        finalize=escape,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
