"""The sections of a model card, built from a :class:`~mllc.card.model.Card`: what each
says, in order, and what it says when nothing is recorded. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from mllc.card import lineage as graphs
from mllc.card.blocks import (
    NOTHING,
    Block,
    Diagram,
    Facts,
    Para,
    Section,
    Segment,
    Table,
    as_json,
    code,
    derived,
    num,
    short,
    strong,
    txt,
)
from mllc.card.model import CandidateEvidence, Card, GateVerdict


def _missing_of(card: Card, *prefixes: str) -> list[Segment]:
    found = [m for m in card.missing if m.what.startswith(prefixes)]
    out: list[Segment] = []
    for m in found:
        out += [txt(" Missing: "), code(m.what), txt(f" ({m.why}).")]
    return out


# ----------------------------------------------------------------------- sections


def _overview(card: Card) -> Section:
    where = (
        "the commit this card is in (apply writes it there before tagging)"
        if card.at_apply
        else (card.commit or "not recorded")
    )
    items: list[tuple[str, tuple[Segment, ...]]] = [
        ("Version", (code(f"{card.name}@{card.version}"),)),
        ("Commit", (code(where) if not card.at_apply else txt(where),)),
        ("Registered", (txt(card.registered or "with this commit"),)),
        ("Model md5", (code(card.model_md5 or "not recorded"),)),
        ("Description", (txt(card.description or "not given"),)),
        ("Owner", (txt(card.owner or "not given"),)),
        (
            "Labels",
            (txt(", ".join(f"{k}={v}" for k, v in card.labels) or "none"),),
        ),
    ]
    blocks: list[Block] = [Facts(tuple(items))]
    for title, value in (("Intended use", card.intended_use), ("Limitations", card.limitations)):
        if value and value.strip():
            paragraphs = [p for p in re.split(r"\n\s*\n", value) if p.strip()]
            blocks.append(Para((strong(f"{title}:"), txt(" " + paragraphs[0]))))
            blocks += [Para((txt(p),)) for p in paragraphs[1:]]
        else:
            blocks.append(
                Para(
                    (
                        strong(f"{title}:"),
                        txt(" not stated in the spec ("),
                        code(_field(title)),
                        txt(")."),
                    )
                ),
            )
    if card.metadata_now:
        blocks.append(
            Para(
                (
                    txt("The spec's metadata changed since this version ("),
                    code(f"pipelines/{card.name}/lifecycle.yaml"),
                    txt(" in the checkout); now:"),
                )
            )
        )
        blocks.append(Facts(tuple((key, (txt(value),)) for key, value in card.metadata_now)))
    return Section("purpose", "Purpose", tuple(blocks))


def _field(title: str) -> str:
    return "metadata." + title.lower().replace(" ", "_")


def _data(card: Card) -> Section:
    d = card.data
    if d is None:
        return Section("data", "Data", (Para((txt(NOTHING), *_missing_of(card, "pipelines/"))),))
    items: list[tuple[str, tuple[Segment, ...]]] = [
        ("Source", (code(d.source) if d.source else txt("not recorded"),)),
    ]
    for path, md5 in d.source_files:
        items.append(("Input", (code(path), txt(f" md5 {short(md5)}"))))
    items += [
        ("Clean data", (txt(f"md5 {short(d.clean_md5)}, sha256 {short(d.data_sha256, 16)}"),)),
        ("Rows", (txt(f"{num(d.rows_in)} in, {num(d.rows_out)} after cleaning"),)),
    ]
    blocks: list[Block] = [Facts(tuple(items))]
    if d.dropped:
        blocks.append(
            Table(
                ("Cleaning: reason", "Rows dropped"),
                tuple((reason, num(n)) for reason, n in d.dropped),
                (False, True),
            )
        )
    else:
        blocks.append(Para((txt("Cleaning report: nothing is recorded."),)))
    settings = ", ".join(f"{k} {num(v)}" for k, v in sorted(d.split_settings.items()))
    blocks.append(
        Table(
            ("Split", "Rows"),
            tuple((part, num(n)) for part, n in d.split),
            (False, True),
        )
    )
    blocks.append(
        Para((txt(f"Split settings: {settings or 'not recorded'}. Sizes: {d.split_how}."),))
    )
    extra = _missing_of(card, f"pipelines/{card.name}/reports/data")
    if extra:
        blocks.append(Para(tuple(extra)))
    return Section("data", "Data", tuple(blocks))


def _metric_names(cands: Sequence[CandidateEvidence], first: str | None) -> list[str]:
    names = sorted({m for c in cands for m in (*c.validation, *c.test)})
    return ([first] if first in names else []) + [m for m in names if m != first]


def _training(card: Card) -> Section:
    cands = card.candidates
    if not cands:
        return Section("training", "Training", (Para((txt(NOTHING),)),))
    metric = card.evaluation.metric if card.evaluation else None
    selected = next((c.name for c in cands if c.selected), None)
    blocks: list[Block] = [
        Para(
            (
                txt("Selected: "),
                strong(selected or "not recorded"),
                txt(f", by validation {metric or 'metric not recorded'}."),
            )
        ),
        Table(
            (
                "Candidate",
                "Selected",
                "Estimator",
                "Params",
                "Search",
                "Trained on",
                "Validated on",
            ),
            tuple(
                (
                    c.name,
                    "yes" if c.selected else "",
                    c.estimator or "not recorded",
                    as_json(c.params) if c.params else "not recorded",
                    _search(c.search),
                    f"{num(c.train_rows)} rows" if c.train_rows is not None else "not recorded",
                    c.validated_on or "not recorded",
                )
                for c in cands
            ),
        ),
    ]
    metrics = _metric_names(cands, metric)
    if metrics:
        blocks.append(
            Table(
                ("Metric", *(f"{c.name} ({split})" for c in cands for split in ("val", "test"))),
                tuple(
                    (
                        m,
                        *(
                            num(scores.get(m)) if m in scores else "-"
                            for c in cands
                            for scores in (c.validation, c.test)
                        ),
                    )
                    for m in metrics
                ),
                (False, *([True] * 2 * len(cands))),
            )
        )
    notes = [c for c in cands if c.note]
    blocks += [Para((txt(f"{c.name}: {c.note}"),)) for c in notes]
    extra = _missing_of(
        card, f"pipelines/{card.name}/reports/train", f"pipelines/{card.name}/reports/candidates"
    )
    if extra:
        blocks.append(Para(tuple(extra)))
    return Section("training", "Training", tuple(blocks))


def _search(search: Mapping[str, Any] | None) -> str:
    if not search:
        return "none"
    parts = [str(search.get("method", "search"))]
    if "cv" in search:
        parts.append(f"cv {num(search['cv'])}")
    if "candidates" in search:
        parts.append(f"{num(search['candidates'])} settings")
    if "cv_score" in search:
        parts.append(f"cv score {num(search['cv_score'])}")
    if "best_params" in search:
        parts.append(f"best {as_json(search['best_params'])}")
    return ", ".join(parts)


def _gate_rows(verdicts: Sequence[GateVerdict]) -> Table:
    return Table(
        ("Gate", "Verdict", "Detail"),
        tuple((v.gate, "pass" if v.passed else "FAIL", v.text) for v in verdicts),
    )


def _evaluation(card: Card) -> Section:
    ev = card.evaluation
    if ev is None:
        return Section(
            "evaluation",
            "Evaluation",
            (
                Para(
                    (
                        txt(NOTHING),
                        *_missing_of(
                            card, f"pipelines/{card.name}/metrics", f"pipelines/{card.name}/plots"
                        ),
                    )
                ),
            ),
        )
    blocks: list[Block] = []
    if ev.test:
        names = sorted(ev.test)
        first = [ev.metric] if ev.metric in names else []
        order = first + [m for m in names if m != ev.metric]
        blocks.append(
            Para(
                (
                    txt("Held-out test metrics of the selected model, "),
                    strong(ev.selected or "not recorded"),
                    txt(" (as the registry and "),
                    code(f"pipelines/{card.name}/metrics.json"),
                    txt(" record them):"),
                )
            )
        )
        blocks.append(
            Table(
                ("Metric", "Test", "Validation"),
                tuple((m, num(ev.test.get(m)), num(ev.validation.get(m))) for m in order),
                (False, True, True),
            )
        )
    else:
        blocks.append(Para((txt("Test metrics: nothing is recorded."),)))
    if ev.gates:
        passed = all(v.passed for v in ev.gates)
        blocks.append(
            Para(
                (
                    txt("Gates (as "),
                    code(ev.gates_from),
                    txt(" recorded them with the version): "),
                    strong("all pass" if passed else "FAIL"),
                )
            )
        )
        blocks.append(_gate_rows(ev.gates))
    else:
        blocks.append(Para((txt("Gates: none recorded for this version."),)))
    if ev.gates_now is not None:
        blocks.append(Para((txt("The checkout's gates differ from the version's; against them:"),)))
        blocks.append(_gate_rows(ev.gates_now))
    if ev.confusion is not None:
        cm = ev.confusion
        blocks.append(
            Para(
                (
                    txt(f"Confusion matrix on the {cm.rows} test rows (from "),
                    code(f"pipelines/{card.name}/plots/confusion.csv"),
                    txt("; rows: actual, columns: predicted):"),
                )
            )
        )
        blocks.append(
            Table(
                ("actual \\ predicted", *cm.labels),
                tuple(
                    (label, *(str(n) for n in row))
                    for label, row in zip(cm.labels, cm.counts, strict=True)
                ),
                (False, *([True] * len(cm.labels))),
            )
        )
        if cm.shown_labels_cut:
            blocks.append(Para((txt(f"{cm.shown_labels_cut} more labels are not shown."),)))
    elif ev.residuals is not None:
        r = ev.residuals
        blocks.append(
            Para(
                (
                    txt(f"Residuals (actual - predicted) on the {r.rows} test rows, from "),
                    code(f"pipelines/{card.name}/plots/residuals.csv"),
                    txt(":"),
                )
            )
        )
        blocks.append(
            Table(
                ("Mean", "Mean absolute", "RMSE", "Min", "Max"),
                (
                    (
                        derived(r.mean),
                        derived(r.mean_abs),
                        derived(r.rmse),
                        derived(r.min),
                        derived(r.max),
                    ),
                ),
                (True, True, True, True, True),
            )
        )
    else:
        plots = _missing_of(card, f"pipelines/{card.name}/plots")
        blocks.append(Para((txt("Confusion matrix / residuals: nothing is recorded."), *plots)))
    return Section("evaluation", "Evaluation", tuple(blocks))


def _deployments(card: Card) -> Section:
    if card.at_apply:
        return Section(
            "deployments",
            "Deployment history",
            (Para((txt("None yet: this card was written when the version was registered."),)),),
        )
    if not card.deployments:
        envs = ", ".join(card.environments)
        where = f" (environments in its spec: {envs})" if envs else ""
        return Section(
            "deployments",
            "Deployment history",
            (Para((txt(f"Never deployed: the registry records no assignment of it{where}."),)),),
        )
    return Section(
        "deployments",
        "Deployment history",
        (
            Para(
                (
                    txt("From the registry's environment assignments (tags "),
                    code(f"{card.name}#ENV#N"),
                    txt("):"),
                )
            ),
            Table(
                ("Environment", "Started", "Stopped", "Why it stopped"),
                tuple(
                    (
                        p.environment,
                        f"{p.started} ({p.started_tag})",
                        f"{p.stopped} ({p.stopped_tag})" if p.stopped else "still running",
                        p.stopped_why or "",
                    )
                    for p in card.deployments
                ),
            ),
        ),
    )


def _monitoring(card: Card) -> Section:
    if card.at_apply:
        return Section(
            "monitoring",
            "Monitoring",
            (Para((txt("None yet: the version has not run anywhere."),)),),
        )
    if not card.monitoring:
        return Section(
            "monitoring",
            "Monitoring",
            (Para((txt(f"Nothing is recorded: no monitoring report names {card.version}."),)),),
        )
    breaches = [m for m in card.monitoring if m.breach]
    summary = f"{len(card.monitoring)} report(s) on {card.version}, {len(breaches)} with a breach."
    blocks: list[Block] = [
        Para((txt(summary),)),
        Table(
            ("Environment", "Time", "Verdict", "Drift", "Performance", "Report"),
            tuple(
                (
                    m.environment,
                    m.time,
                    "breach" if m.breach else "no breach",
                    m.drift,
                    m.performance,
                    f"{m.report} ({m.where})",
                )
                for m in card.monitoring
            ),
        ),
    ]
    for m in breaches:
        for reason in m.reasons:
            blocks.append(Para((txt(f"Breach in {m.environment} at {m.time}: {reason}"),)))
    return Section("monitoring", "Monitoring", tuple(blocks))


def _verification(card: Card) -> Section:
    v = card.verification
    status: tuple[Segment, ...] = (strong(v.state), txt(f": {v.text}"))
    if v.state == "unverified":
        status = (
            strong(v.state),
            txt(": not verified on this machine (run "),
            code(f"mllc verify {card.name}@{card.version}"),
            txt(")"),
        )
    items: list[tuple[str, tuple[Segment, ...]]] = [("Status", status)]
    if v.summary:
        items.append(("Summary", (txt(v.summary),)))
    if v.mllc_version:
        items.append(("Checked by", (txt(f"mllc {v.mllc_version}"),)))
    return Section("verification", "Verification", (Facts(tuple(items)),))


def _lineage(card: Card) -> Section:
    lin = card.lineage
    items: list[tuple[str, tuple[Segment, ...]]] = [
        ("Spec sha256", (code(lin.spec_sha256 or "not recorded"),)),
        ("Commit", (code(lin.commit) if lin.commit else txt("the commit this card is in"),)),
        ("Model md5", (code(lin.model_md5 or "not recorded"),)),
        ("Model sha256", (code(lin.model_sha256 or "not recorded"),)),
        ("Data sha256", (code(lin.data_sha256 or "not recorded"),)),
        ("Params sha256", (code(lin.params_sha256 or "not recorded"),)),
        (
            "Libraries",
            (txt(", ".join(f"{k} {v}" for k, v in lin.libraries) or "not recorded"),),
        ),
    ]
    if lin.registered_by:
        items.append(("Registered by", (txt(f"mllc {lin.registered_by}"),)))
    if lin.trained_on:
        items.append(("Training ran on", (txt(lin.trained_on),)))
    return Section(
        "lineage",
        "Lineage",
        (
            Facts(tuple(items)),
            Diagram(graphs.mermaid(card.graph), graphs.text(card.graph)),
        ),
    )


def _missing(card: Card) -> Section | None:
    if not card.missing:
        return None
    return Section(
        "missing",
        "Evidence not found",
        (Table(("Record", "Why"), tuple((m.what, m.why) for m in card.missing)),),
    )


def sections(card: Card) -> list[Section]:
    found = [
        _overview(card),
        _data(card),
        _training(card),
        _evaluation(card),
        _deployments(card),
        _monitoring(card),
        _verification(card),
        _lineage(card),
    ]
    extra = _missing(card)
    return found + ([extra] if extra else [])
