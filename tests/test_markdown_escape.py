"""Spec values and data in the PR comment render as text and nothing else.

The plan comment (``mllc plan --format markdown``) and the monitoring report (which
is also the body of a monitoring pull request) go through one escaper,
:func:`mllc.mdtext.escape`. These tests render the output with cmark-gfm, GitHub's
own Markdown engine (tables, autolinks, strikethrough enabled), and check the HTML:
no link, no image, no HTML element from the data, and the visible text is the data.
GitHub's @mentions and #123 references are added after cmark-gfm by GitHub itself,
so they are checked on the rendered text.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import cmarkgfm
from cmarkgfm.cmark import Options
from hypothesis import given, settings
from hypothesis import strategies as st

from mllc import mdtext
from mllc.monitor.render import markdown as monitor_markdown
from mllc.plan.markdown import markdown as plan_markdown
from mllc.plan.model import Binding, Change, Plan, summarize
from tests.test_monitor_render import _feature, _report

HOSTILE = (
    "see [click](https://evil.example/x) ![pixel](https://evil.example/p.png) "
    "https://evil.example/bare www.evil.example ping @ml-team mail ops@evil.example "
    "<img src=x onerror=alert(1)> <a href='https://evil.example'>a</a> closes #12 GH-7 "
    "<https://evil.example/auto> **bold** _em_ ~~gone~~ `code` | cell [ref]: https://e.example"
)


def render(md: str) -> str:
    """GitHub's engine; raw HTML let through (UNSAFE) so any leak shows."""
    return cmarkgfm.github_flavored_markdown_to_html(md, options=Options.CMARK_OPT_UNSAFE)


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Html:
    p = _Html()
    p.feed(html)
    p.close()
    return p


def _squash(text: str) -> str:
    return " ".join(text.split())


def test_plan_comment_renders_hostile_reasons_as_text() -> None:
    change = Change(
        address="iris/stage/train@forest",
        lifecycle="iris",
        kind="stage",
        action="run",
        category="retrain",
        reasons=(HOSTILE,),
    )
    blocked = change.model_copy(update={"address": "iris/gates", "blocking": True})
    plan = Plan(
        mllc_version="0.0.0",
        lifecycles=("iris",),
        changes=(change, blocked),
        summary=summarize([change, blocked]),
        warnings=(HOSTILE,),
        binding=Binding(git_commit=None, specs={}, files={}, locks={}, registry={}),
    )
    md = plan_markdown(plan)
    # the comment's own structure (details, tables, code spans, bold) is allowed
    text = assert_inert_data(render(md))
    # both table rows, the blocker line and the warning
    assert text.count(_squash(HOSTILE)) == 4


def assert_inert_data(rendered: str) -> str:
    """The plan's own markup uses <code>, <strong> and <details>; links and images are
    never its own, so none may appear at all."""
    page = parse(rendered)
    bad = [(t, a) for t, a in page.tags if t in {"a", "img", "script", "iframe", "del", "em"}]
    assert not bad, bad
    shown = "".join(page.text)
    assert re.search(r"(?<![\w\u200b])@\w", shown) is None
    assert re.search(r"(?:#|\bGH-)\d", shown) is None
    return _squash(shown.replace("\u200b", ""))


def test_monitor_report_renders_hostile_names_as_text() -> None:
    # the column name (a data value) and a warning carry the payload
    report = _report((_feature(HOSTILE, 0.5),), warnings=(HOSTILE,))
    md = monitor_markdown(report, html_name=None)
    text = assert_inert_data(render(md))
    # the drift table, the breach reason and the warning
    assert text.count(_squash(HOSTILE)) == 3


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_renders_as_itself_and_nothing_else(data: str) -> None:
    expected = _squash(mdtext.one_line(data))
    # in a paragraph, after a list marker, in a quote and in a table cell
    for md in (
        mdtext.escape(data),
        f"- {mdtext.escape(data)}",
        f"> {mdtext.escape(data)}",
        f"| a | b |\n|---|---|\n| {mdtext.escape(data)} | x |",
    ):
        page = parse(render(md))
        assert not [
            t
            for t, _ in page.tags
            if t not in {"p", "ul", "li", "blockquote", "table", "thead", "tbody", "tr", "th", "td"}
        ], md
        shown = "".join(page.text)
        assert re.search(r"(?<![\w\u200b])@\w", shown) is None
        assert re.search(r"(?:#|\bGH-)\d", shown) is None
        assert expected in _squash(shown.replace("\u200b", "")), md


def test_code_spans_never_break_a_table_cell() -> None:
    assert mdtext.code("iris/model") == "`iris/model`"
    assert "`" not in mdtext.code("a|b")
    assert mdtext.code("a`b") == mdtext.escape("a`b") == "a\\`b"
