"""One Markdown escaper for everything mllc posts where people read it: the plan
comment on a pull request and the monitoring report (and, through it, the body of a
monitoring pull request).

Text that comes from a spec or from data (names, column names, reasons, versions,
paths) must render as the same text and nothing else on GitHub: no HTML, no table
column break, no emphasis, code, link or image syntax, no block syntax at the start
of a line, no ``@mention`` or ``#123`` reference, no bare URL or e-mail address turned
into a link by GitHub's autolink extension. :func:`escape` does all of that on one
line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]+")
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_PUNCT = re.compile(r"([\\`*\[\]~|!])")
# an underscore is inert only between two letters/digits (it cannot open or close emphasis)
_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
_LEADING = re.compile(r"^(\s*)([#=+-])|^(\s*\d+)([.)])")
# GitHub's autolink extension links "scheme://…", "www.…" and e-mail addresses; a
# zero-width space breaks each pattern without changing what a reader sees
_SCHEME = re.compile(r"(:)(//)")
_WWW = re.compile(r"(www)(\.)", re.IGNORECASE)
# GitHub links "#123" and "GH-123" to issues and pull requests
_ISSUE_REF = re.compile(r"(#|\bGH-)(\d)", re.IGNORECASE)
_SPACES = re.compile(r" {2,}")
ZWSP = "&#8203;"


def one_line(text: str) -> str:
    """Line breaks to a space, tabs to a space, other control characters dropped."""
    return _CONTROLS.sub("", _LINE_BREAKS.sub(" ", text).replace("\t", " "))


def escape(text: str) -> str:
    """Make data safe in GitHub Markdown, table cells included: one line (runs of
    spaces folded, as a browser shows them, so no indented code block), no HTML, no column
    break, no emphasis/code/link/image syntax, no @mention or issue reference, no
    autolink, no block syntax."""
    text = _SPACES.sub(" ", one_line(text))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _PUNCT.sub(r"\\\1", text)
    text = _UNDERSCORE.sub(r"\\_", text)
    # no heading, list item or setext underline
    text = _LEADING.sub(lambda m: f"{m[1] or m[3] or ''}\\{m[2] or m[4]}", text)
    # (issue references first: the zero-width space's own entity has a "#8")
    text = _ISSUE_REF.sub(rf"\1{ZWSP}\2", text)
    text = _SCHEME.sub(rf"\1{ZWSP}\2", text)
    text = _WWW.sub(rf"\1{ZWSP}\2", text)
    # a zero-width space after @ keeps GitHub from turning @team into a mention
    # (and a@b.com into a mailto link)
    return text.replace("@", f"@{ZWSP}")


def code(text: str) -> str:
    """A code span when the text allows one (its content is never parsed: no link,
    mention or HTML inside; a ``|`` would still end a table cell), else escaped text."""
    line = one_line(text).strip()
    return f"`{line}`" if line and not ({"`", "|"} & set(line)) else escape(text)


# A run of text in a page built as data (the monitoring report, the model card): plain
# text, a code span or strong text, rendered to Markdown by :func:`segments`.
Segment = tuple[Literal["text", "code", "strong"], str]


def segments(parts: Iterable[Segment]) -> str:
    """Runs of text as safe Markdown: each escaped, or a code span, or strong."""
    out = []
    for kind, text in parts:
        if kind == "code":
            out.append(code(text))
        elif kind == "strong":
            out.append(f"**{escape(text)}**")
        else:
            out.append(escape(text))
    return "".join(out)
