"""Model cards (``mllc card``) on a real repository: real Git, DVC, training, a local
inference server on 127.0.0.1 and the real CLI.

The repository is the session's applied iris repository (v1.0.0, whose card apply
committed), then a spec edit giving it a hostile description and intended use and a
``staging`` environment (v1.0.0 deployed there), then a retraining of the selected
candidate (v1.1.0, which replaces v1.0.0 in staging). Every number a card shows is
checked against ``mllc status --json``, the version commit's metrics files and
``dvc metrics show``; the Markdown is rendered with GitHub's own engine (cmark-gfm) and
the HTML parsed with :mod:`html.parser`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import socket
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import cmarkgfm
import pytest
import yaml
from cmarkgfm.cmark import Options
from helpers_repo import (
    NAME,
    PIPE,
    applied_repo,
    copy_repo,
    dvc,
    edit_spec,
    git,
    mllc,
    status_porcelain,
    tags,
    wait_until_gone,
)
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

DESCRIPTION = (
    "<script>alert(1)</script> </td></tr> {{ 7*7 }} | @ml-team closes #12 "
    "[click](https://evil.example) `tick` **bold**"
)
INTENDED = "Sorting flowers <b>only</b>.\n\n# not a heading\n</td> {% if x %}{{ y }}{% endif %}"
SECTIONS = (
    "Purpose",
    "Data",
    "Training",
    "Evaluation",
    "Deployment history",
    "Monitoring",
    "Verification",
    "Lineage",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_servers(repo: Path) -> None:
    for state in (repo / ".mllc" / "serve").rglob("server-*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            os.kill(json.loads(state.read_text())["pid"], signal.SIGKILL)


def quiet_copy(src: Path, dst: Path) -> Path:
    """A copy that does not claim the original's servers (their state files stay behind)."""
    repo = copy_repo(src, dst)
    shutil.rmtree(repo / ".mllc" / "serve", ignore_errors=True)
    return repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    applied = applied_repo(tmp_path_factory)
    path = copy_repo(applied.repo, tmp_path_factory.mktemp("card") / "repo")
    port = free_port()

    def purpose(data: dict[str, Any]) -> None:
        data["metadata"]["description"] = DESCRIPTION
        data["metadata"]["intended_use"] = INTENDED
        data["environments"] = {"staging": {"target": "local", "model": "latest", "port": port}}

    def retrain(data: dict[str, Any]) -> None:
        # more trees: the forest then wins the selection and passes the gates (a new
        # version, which `latest` moves staging to)
        data["models"]["forest"]["params"]["n_estimators"] = 30

    try:
        edit_spec(path, purpose, commit="purpose and staging")
        mllc("apply", "--auto-approve", cwd=path)
        edit_spec(path, retrain, commit="forest: more trees")
        mllc("apply", "--auto-approve", cwd=path)
        assert {f"{NAME}@v1.0.0", f"{NAME}@v1.1.0"} <= tags(path)
        yield path
    finally:
        stop_servers(path)
        wait_until_gone(path)


# ----------------------------------------------------------------------------- helpers


def card(repo: Path, *args: str) -> str:
    return mllc("card", *args, cwd=repo).stdout


def section(md: str, title: str) -> str:
    """The Markdown of one ``## title`` section."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", md, re.M | re.S)
    assert match, f"no section {title!r} in:\n{md}"
    return match.group(1)


def table(md: str, first_header: str) -> list[list[str]]:
    """The rows (header first) of the Markdown table whose first header cell is given."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if not all(set(c) <= set("-: ") for c in cells):
            rows.append(cells)
    return rows


def status(repo: Path) -> dict[str, dict[str, Any]]:
    report = json.loads(mllc("status", "--json", cwd=repo).stdout)
    (lc,) = report["lifecycles"]
    return {v["version"]: v for v in lc["versions"]}


def at_tag(repo: Path, version: str, path: str) -> Any:
    return json.loads(git("show", f"{NAME}@{version}:{path}", cwd=repo))


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.open: list[str] = []
        self.text: list[str] = []
        self.code_depth = 0
        self.outside_code: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in {"meta", "br", "hr", "img", "input", "link"}:
            self.open.append(tag)
        if tag in ("code", "pre"):
            self.code_depth += 1

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-3:]}"
        self.open.pop()
        if tag in ("code", "pre"):
            self.code_depth -= 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if not self.code_depth:
            self.outside_code.append(data)


def parse(page: str) -> Page:
    p = Page()
    p.feed(page)
    p.close()
    return p


def github(md: str) -> Page:
    """The card as GitHub renders it (raw HTML let through, so any leak shows)."""
    rendered = cmarkgfm.github_flavored_markdown_to_html(md, options=Options.CMARK_OPT_UNSAFE)
    return parse(rendered)


def squash(text: str) -> str:
    return " ".join(text.replace("\u200b", "").split())


# ------------------------------------------------------------------------------- tests


def test_every_section_is_filled_from_the_records(repo: Path) -> None:
    before = (status_porcelain(repo), tags(repo))
    md = card(repo, f"{NAME}@v1.0.0")
    assert md.startswith(f"# Model card: `{NAME}@v1.0.0`\n")
    assert [m for m in re.findall(r"^## (.+)$", md, re.M)] == list(SECTIONS)
    for title in SECTIONS:
        assert section(md, title).strip(), title
    purpose = section(md, "Purpose")
    commit = git("rev-parse", f"{NAME}@v1.0.0^{{commit}}", cwd=repo)
    assert f"`{commit}`" in purpose and "ml-team@&#8203;example.com" in purpose
    assert "team=botany" in purpose
    # the version's own record: the description it was registered with; then what the
    # spec says now (changed after v1.0.0 was registered)
    assert "- **Description:** Classify iris species" in purpose
    assert "The spec's metadata changed since this version" in purpose
    assert "- **description:** &lt;script&gt;alert(1)" in purpose
    assert "- **intended_use:** Sorting flowers &lt;b&gt;only&lt;/b&gt;." in purpose
    data = section(md, "Data")
    report = at_cache(repo, "v1.0.0", f"{PIPE}/reports/data.json")
    assert f"{report['rows_in']} in, {report['rows_out']} after cleaning" in data
    dropped = dict(table(data, "Cleaning: reason")[1:])
    assert {k: int(v) for k, v in dropped.items()} == report["dropped"]
    split = {part: int(n) for part, n in table(data, "Split")[1:]}
    assert sum(split.values()) == report["rows_out"]
    confusion = table(section(md, "Evaluation"), "actual \\\\ predicted")
    assert sum(int(n) for row in confusion[1:] for n in row[1:]) == split["test"]
    training = section(md, "Training")
    for name in yaml.safe_load(git("show", f"{NAME}@v1.0.0:{PIPE}/params.yaml", cwd=repo))[
        "models"
    ]:
        train = at_cache(repo, "v1.0.0", f"{PIPE}/reports/train/{name}.json")
        assert train["estimator"] in training
        assert json.dumps(train["params"], sort_keys=True, separators=(", ", ": ")) in training
        assert split["train"] == train["rows"]
    evaluation = section(md, "Evaluation")
    assert "**all pass**" in evaluation and "| accuracy &gt;= 0.9 | pass |" in evaluation
    history = section(md, "Deployment history")
    (row,) = table(history, "Environment")[1:]
    assert row[0] == "staging" and row[3] == "replaced by v1.1.0"
    assert "iris#staging#&#8203;1" in row[1] and "iris#staging#&#8203;2" in row[2]
    assert "no monitoring report names v1.0.0" in section(md, "Monitoring")
    assert f"`mllc verify {NAME}@v1.0.0`" in section(md, "Verification")
    lineage = section(md, "Lineage")
    record = yaml.safe_load(git("show", f"{NAME}@v1.0.0:{PIPE}/lifecycle.yaml", cwd=repo))
    assert f"`{record['spec_sha256']}`" in lineage
    payload = tag_payload(repo, "v1.0.0")
    assert f"`{payload['model_md5']}`" in lineage
    assert f"`{payload['lineage']['data_sha256']}`" in lineage
    for lib, version in payload["lineage"]["versions"].items():
        assert f"{lib} {version}" in lineage
    assert "```mermaid\nflowchart LR\n" in lineage and '(("staging (ran)"))' in lineage
    # the newest version, by default: still running in staging
    newest = card(repo, NAME)
    assert newest.startswith(f"# Model card: `{NAME}@v1.1.0`\n")
    (row,) = table(section(newest, "Deployment history"), "Environment")[1:]
    assert row[0] == "staging" and row[2] == "still running"
    assert '(("staging (running)"))' in section(newest, "Lineage")
    # read-only
    assert (status_porcelain(repo), tags(repo)) == before


def at_cache(repo: Path, version: str, path: str) -> Any:
    """An output DVC caches, by the md5 the version commit's dvc.lock records."""
    lock = yaml.safe_load(git("show", f"{NAME}@{version}:{PIPE}/dvc.lock", cwd=repo))
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            if out["path"] == path:
                md5 = out["md5"]
                return json.loads((repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).read_text())
    raise AssertionError(f"{path} not in dvc.lock of {version}")


def tag_payload(repo: Path, version: str) -> dict[str, Any]:
    message = git("for-each-ref", "--format=%(contents)", f"refs/tags/{NAME}@{version}", cwd=repo)
    payload = json.loads(message.partition("\n\n")[2])
    assert isinstance(payload, dict)
    return payload


def test_numbers_equal_status_and_the_metrics_files(repo: Path) -> None:
    versions = status(repo)
    for version, row in versions.items():
        md = card(repo, f"{NAME}@{version}")
        evaluation = table(section(md, "Evaluation"), "Metric")
        assert evaluation[0] == ["Metric", "Test", "Validation"]
        metrics = at_tag(repo, version, f"{PIPE}/metrics.json")
        shown = {m: (float(t), float(v)) for m, t, v in evaluation[1:]}
        assert {m: t for m, (t, _) in shown.items()} == row["test"] == metrics["test"]
        assert {m: v for m, (_, v) in shown.items()} == metrics["validation"]
        assert f"Held-out test metrics of the selected model, **{metrics['model']}**" in md
        # every candidate's validation and test scores, as its commit records them
        scores = table(section(md, "Training"), "Metric")
        header = scores[0][1:]
        for m, *cells in scores[1:]:
            for head, cell in zip(header, cells, strict=True):
                name, split = re.fullmatch(r"(.+) \((val|test)\)", head).groups()
                report = at_tag(repo, version, f"{PIPE}/reports/candidates/{name}.json")
                recorded = report["validation" if split == "val" else "test"].get(m)
                assert (float(cell) if cell not in ("-", "n/a") else None) == recorded, (m, head)
        assert row["model_md5"] in section(md, "Lineage")
    # the checkout holds the newest version: `dvc metrics show` agrees with its card
    shown = json.loads(dvc("metrics", "show", "--json", cwd=repo).stdout)[""]["data"]
    newest = card(repo, NAME)
    evaluation = {m: float(t) for m, t, _ in table(section(newest, "Evaluation"), "Metric")[1:]}
    assert evaluation == shown[f"{PIPE}/metrics.json"]["data"]["test"]
    scores = table(section(newest, "Training"), "Metric")
    for path, entry in shown.items():
        if "/reports/candidates/" in path:
            name = Path(path).stem
            col = scores[0].index(f"{name} (test)")
            for m, value in entry["data"]["test"].items():
                (row,) = [r for r in scores[1:] if r[0] == m]
                assert float(row[col]) == value


def test_apply_commits_the_card_of_each_new_version_and_stays_clean(repo: Path) -> None:
    for version in ("v1.0.0", "v1.1.0"):
        tag = f"{NAME}@{version}"
        committed = git("show", f"{tag}:{PIPE}/card.md", cwd=repo)
        assert committed.startswith(f"# Model card: `{tag}`\n"), committed[:200]
        assert f"`{tag_payload(repo, version)['model_md5']}`" in committed
        assert "None yet: this card was written when the version was registered." in committed
        assert "not yet verified" in committed
        assert "Evidence not found" not in committed
        assert [m for m in re.findall(r"^## (.+)$", committed, re.M)] == list(SECTIONS)
        # the evidence in it is the version's: the same evaluation as `mllc card` shows now
        now = card(repo, tag)
        assert section(committed, "Evaluation") == section(now, "Evaluation")
        assert section(committed, "Training") == section(now, "Training")
        assert section(committed, "Data") == section(now, "Data")
    assert status_porcelain(repo) == ""
    plan = mllc("plan", "--detailed-exitcode", cwd=repo, check=False)
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_hostile_purpose_is_text_in_markdown_and_html(repo: Path) -> None:
    md = card(repo, f"{NAME}@v1.1.0")
    committed = git("show", f"{NAME}@v1.1.0:{PIPE}/card.md", cwd=repo)
    for text in (md, committed):
        assert "<script>" not in text and "</td>" not in text and "<b>" not in text
        page = github(text)
        # the card's own markup only: no element, link or image from the data
        assert not {"script", "a", "img", "b", "em", "del"} & set(page.tags), page.tags
        assert page.tags.count("h1") == 1
        shown = squash("".join(page.text))
        assert squash(DESCRIPTION) in shown
        assert "Sorting flowers <b>only</b>." in shown and "# not a heading" in shown
        outside = "".join(page.outside_code)
        assert re.search(r"(?<![\w\u200b])@\w", outside) is None
        assert re.search(r"#\d", outside) is None
    page_html = mllc("card", f"{NAME}@v1.1.0", "--format", "html", cwd=repo).stdout
    page = parse(page_html)  # every element closed in order (asserted while parsing)
    assert page.open == [] or page.open == ["html"]
    assert "script" not in page.tags and "b" not in page.tags
    shown = squash("".join(page.text))
    assert squash(DESCRIPTION) in shown and "{% if x %}{{ y }}{% endif %}" in shown
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;/td&gt;&lt;/tr&gt;" in page_html
    assert [h for h in re.findall(r"<h2>(.*?)</h2>", page_html)] == list(SECTIONS)
    # --out writes the same bytes
    out = repo.parent / "card.html"
    mllc("card", f"{NAME}@v1.1.0", "--format", "html", "--out", str(out), cwd=repo)
    assert out.read_text(encoding="utf-8") == page_html


def test_monitoring_and_verification_when_recorded(repo: Path, tmp_path: Path) -> None:
    work = quiet_copy(repo, tmp_path / "repo")
    from sklearn.datasets import load_iris

    batch = tmp_path / "batch.csv"
    load_iris(as_frame=True).frame.sample(60, random_state=1).to_csv(batch, index=False)
    proc = mllc("monitor", NAME, "--env", "staging", "--data", str(batch), cwd=work, check=False)
    assert proc.returncode in (0, 2), proc.stdout + proc.stderr
    report = json.loads((work / f"monitoring/{NAME}/staging/report.json").read_text())
    assert report["version"] == "v1.1.0"
    md = card(work, NAME)
    monitoring = section(md, "Monitoring")
    breaches = 1 if report["breach"] else 0
    assert f"1 report(s) on v1.1.0, {breaches} with a breach." in monitoring
    (row,) = table(monitoring, "Environment")[1:]
    assert row[0] == "staging" and report["id"] in row[5]
    assert row[2] == ("breach" if report["breach"] else "no breach")
    for reason in report["reasons"]:
        assert f"Breach in staging at {report['time']}: " in monitoring
        assert squash(reason.replace(">", "&gt;")) in squash(monitoring)
    # v1.0.0 never ran while monitored
    assert "no monitoring report names v1.0.0" in card(work, f"{NAME}@v1.0.0")

    versions = status(work)
    v = versions["v1.1.0"]
    record = work / ".mllc/verify" / NAME / "v1.1.0.json"
    record.parent.mkdir(parents=True)
    good = {
        "name": NAME,
        "version": "v1.1.0",
        "commit": v["commit"],
        "model_md5": v["model_md5"],
        "verified": True,
        "checked_at": "2026-01-02T03:04:05Z",
        "summary": "rebuilt bit for bit: 6 stages, 14 outputs",
        "mllc_version": "0.1.0",
    }
    record.write_text(json.dumps(good))
    verification = section(card(work, NAME), "Verification")
    assert "**verified**: verified at 2026-01-02T03:04:05Z" in verification
    assert "rebuilt bit for bit: 6 stages, 14 outputs" in verification
    record.write_text(json.dumps({**good, "verified": False, "summary": "model differs"}))
    verification = section(card(work, NAME), "Verification")
    assert "**failed**" in verification and "model differs" in verification
    # another commit, another model, or a broken file: not this version's verification
    for bad in (
        json.dumps({**good, "commit": "0" * 40}),
        json.dumps({**good, "model_md5": "0" * 32}),
        json.dumps({**good, "verified": "yes"}),
        '{"name": "iris", "version": ',
        "[]",
    ):
        record.write_text(bad)
        verification = section(card(work, NAME), "Verification")
        assert "**unverified**: not verified on this machine (run " in verification
        assert f"`mllc verify {NAME}@v1.1.0`" in verification


def test_missing_cached_reports_are_named_not_fatal(repo: Path, tmp_path: Path) -> None:
    work = quiet_copy(repo, tmp_path / "repo")
    lock = yaml.safe_load(git("show", f"{NAME}@v1.0.0:{PIPE}/dvc.lock", cwd=work))
    gone = {}
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            if out["path"].endswith((".json",)) and "/reports/candidates/" not in out["path"]:
                if out["path"].endswith("metrics.json"):
                    continue
                md5 = out["md5"]
                (work / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).unlink(missing_ok=True)
                gone[out["path"]] = md5
    assert f"{PIPE}/reports/data.json" in gone and f"{PIPE}/lineage.json" in gone
    proc = mllc("card", f"{NAME}@v1.0.0", cwd=work)
    md = proc.stdout
    missing = section(md, "Evidence not found")
    for path, md5 in gone.items():
        if path.endswith("lineage.json"):
            continue  # the registry's tag carries the lineage: nothing is missing
        assert path.replace("_", "\\_") in missing or path in missing, path
        assert md5 in missing
    assert "not in the local DVC cache" in missing and "dvc pull" in missing
    # what the commit itself holds is still there
    assert "**all pass**" in section(md, "Evaluation")
    assert "n/a in, n/a after cleaning" in section(md, "Data")


def test_unknown_versions_and_bad_arguments_are_clean_errors(repo: Path) -> None:
    for args, expected in (
        (("card", f"{NAME}@v9.9.9"), f"{NAME}@v9.9.9 is not a registered version"),
        (("card", "nosuch"), "nosuch has no registered version"),
        (("card", NAME, "--format", "pdf"), "--format must be md or html"),
        (("lineage", f"{NAME}@v9.9.9"), f"{NAME}@v9.9.9 is not a registered version"),
        (("lineage", NAME), "expected NAME@vX.Y.Z"),
        (("lineage", f"{NAME}@v1.0.0", "--format", "svg"), "--format must be text"),
    ):
        proc = mllc(*args, cwd=repo, check=False)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stdout == ""


def test_a_version_an_older_mllc_registered_reads_its_reports_from_git(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """Before the per-candidate reports, a version's commit kept every report in Git
    (one ``reports/candidates.json``, ``reports/data.json``, ``reports/train/<m>.json``,
    ``lineage.json``) and the DVC cache had none of them: the card reads them there."""
    from test_migrate_reports import LEGACY, OLD_REPORTS, _make_old

    from mllc.registry import register

    applied = applied_repo(tmp_path_factory)
    work = copy_repo(applied.repo, tmp_path / "repo")
    payload = tag_payload(work, "v1.0.0")
    _make_old(work)
    git("tag", "-d", f"{NAME}@v1.0.0", cwd=work)  # registered again, at the old layout's commit
    commit = git("rev-parse", "HEAD", cwd=work)
    register(work, NAME, commit, payload["model_md5"], payload["metrics"], payload["lineage"])
    assert set(OLD_REPORTS) | {LEGACY} <= set(git("ls-files", cwd=work).split())
    md = card(work, NAME)
    assert md.startswith(f"# Model card: `{NAME}@v1.0.0`\n")
    assert "Evidence not found" not in md, section(md, "Evidence not found")
    assert "149 after cleaning" in section(md, "Data")
    legacy = json.loads(git("show", f"HEAD:{LEGACY}", cwd=work))["candidates"]
    scores = table(section(md, "Training"), "Metric")
    for name, entry in legacy.items():
        col = scores[0].index(f"{name} (test)")
        for m, value in entry["test"].items():
            (row,) = [r for r in scores[1:] if r[0] == m]
            assert float(row[col]) == value
    assert "n_estimators" in section(md, "Training")


def _assignment(env: str, version: str | None, n: int, unassign: bool = False) -> Any:
    from mllc.types import Assignment

    return Assignment(
        name=NAME,
        env=env,
        version=version,
        commit="c" * 40,
        tag=f"{NAME}#{env}#{n}",
        counter=n,
        created=f"2026-01-0{n}T00:00:00+00:00",
        unassign=unassign,
    )


def test_deployment_periods_follow_the_assignment_order() -> None:
    from mllc.card.records import periods

    history = {
        "staging": [
            _assignment("staging", "v1.0.0", 1),
            _assignment("staging", "v1.0.0", 2),  # a redeploy: the same period
            _assignment("staging", "v1.1.0", 3),
            _assignment("staging", "v1.0.0", 5),  # rolled back to it
        ],
        "prod": [
            _assignment("prod", "v1.0.0", 4),
            _assignment("prod", "v1.2.0", 6, unassign=True),  # another version's: no change
            _assignment("prod", "v1.0.0", 7, unassign=True),
        ],
    }
    found = [
        (p.environment, p.started_tag, p.stopped_tag, p.stopped_why)
        for p in periods(history, "v1.0.0")
    ]
    assert found == [
        ("staging", f"{NAME}#staging#1", f"{NAME}#staging#3", "replaced by v1.1.0"),
        ("prod", f"{NAME}#prod#4", f"{NAME}#prod#7", "unassigned"),
        ("staging", f"{NAME}#staging#5", None, None),
    ]
    assert periods(history, "v9.0.0") == ()


def test_plots_are_summarised_as_recorded() -> None:
    from mllc.card.records import confusion, residuals

    cm = confusion(b"actual,predicted\n1,1\n10,2\n2,2\n2,10\nsetosa,setosa\n")
    assert cm is not None and cm.rows == 5
    assert cm.labels == ("1", "2", "10", "setosa")  # numbers in numeric order, then text
    assert cm.counts == ((1, 0, 0, 0), (0, 1, 1, 0), (0, 1, 0, 0), (0, 0, 0, 1))
    assert confusion(b"something,else\n1,2\n") is None
    r = residuals(b"actual,predicted,residual\n3.0,1.0,2.0\n1.0,2.0,-1.0\n5,5,\n2,2,nan\n")
    assert r is not None and r.rows == 2
    assert (r.mean, r.mean_abs, r.min, r.max) == (0.5, 1.5, -1.0, 2.0)
    assert abs(r.rmse - (2.5**0.5)) < 1e-12
    assert residuals(b"actual,predicted,residual\n") is None


@pytest.fixture(scope="module")
def recorded_card(repo: Path) -> Any:
    from mllc.card import card_of

    return card_of(repo, f"{NAME}@v1.1.0")


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_any_purpose_renders_as_itself_and_nothing_else(recorded_card: Any, data: str) -> None:
    """Whatever a spec's description or intended use holds, GitHub shows it as that text:
    no element, link, image, mention or issue reference of its own."""
    from mllc import mdtext
    from mllc.card import markdown

    card = dataclasses.replace(recorded_card, description=data, intended_use=data or None)
    page = github(markdown(card))
    assert not {"script", "a", "img", "em", "del", "b", "i", "h3"} & set(page.tags), page.tags
    assert page.tags.count("h1") == 1 and page.tags.count("h2") == len(SECTIONS)
    expected = squash(mdtext.one_line(data))
    shown = squash("".join(page.text))
    if expected:
        assert f"Description: {expected}" in shown
    outside = "".join(page.outside_code)
    assert re.search(r"(?<![\w\u200b])@\w", outside) is None
    assert re.search(r"(?:#|\bGH-)\d", outside, re.I) is None


def test_a_revert_to_a_registered_model_carries_that_versions_card(
    repo: Path, tmp_path: Path
) -> None:
    work = quiet_copy(repo, tmp_path / "repo")

    def back(data: dict[str, Any]) -> None:
        data["models"]["forest"]["params"]["n_estimators"] = 10
        data["environments"] = {}  # the copy runs no server

    edit_spec(work, back, commit="forest: back to 10 trees")
    proc = mllc("apply", "--auto-approve", cwd=work)
    assert "is already iris@v1.0.0" in proc.stdout, proc.stdout
    assert tags(work) == tags(repo)
    card_at_head = git("show", f"HEAD:{PIPE}/card.md", cwd=work)
    assert card_at_head == git("show", f"{NAME}@v1.0.0:{PIPE}/card.md", cwd=work)
    assert status_porcelain(work) == ""
    plan = mllc("plan", "--detailed-exitcode", cwd=work, check=False)
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_the_card_shows_what_mllc_verify_recorded(repo: Path, tmp_path: Path) -> None:
    work = quiet_copy(repo, tmp_path / "repo")
    before = section(card(work, f"{NAME}@v1.0.0"), "Verification")
    assert "**unverified**" in before
    proc = mllc("verify", f"{NAME}@v1.0.0", cwd=work, check=False)
    record = json.loads((work / ".mllc/verify" / NAME / "v1.0.0.json").read_text())
    after = section(card(work, f"{NAME}@v1.0.0"), "Verification")
    if proc.returncode == 0:
        assert record["verified"] is True
        assert f"**verified**: verified at {record['checked_at']}" in after
    else:
        assert f"**failed**: verification FAILED at {record['checked_at']}" in after
    # only that version's
    assert "**unverified**" in section(card(work, NAME), "Verification")
