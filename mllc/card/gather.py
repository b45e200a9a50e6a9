"""Gather the evidence about one version into a :class:`~mllc.card.model.Card`.

From a registered version's commit (:class:`~mllc.card.files.AtCommit`) or, for the card
apply writes into the commit it is about to tag, from the workspace
(:class:`~mllc.card.files.Workspace`); the registry, the monitoring reports and the
verification record from :mod:`mllc.card.records`. Everything read is bounded; nothing
outside the repository and the DVC cache is read; no model is loaded and no code from a
spec runs. A record that cannot be read becomes a :class:`~mllc.card.model.Missing` the
card shows, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mllc.card import lineage as graphs
from mllc.card import records
from mllc.card.files import (
    AtCommit,
    CardError,
    Files,
    Workspace,
    integer,
    lock_data,
    mapping,
    metric_values,
    text_of,
    yaml_data,
)
from mllc.card.model import (
    CandidateEvidence,
    Card,
    Confusion,
    DataEvidence,
    Evaluation,
    GateVerdict,
    LineageFacts,
    Missing,
    MonitorEvidence,
    Period,
    Residuals,
    Verification,
)
from mllc.layout import Layout
from mllc.policy.gates import evaluate
from mllc.registry import assignments, list_versions
from mllc.saferead import json_object
from mllc.semver import next_version, sort_key
from mllc.types import RegisteredVersion

PLOT_MAX_BYTES = 16 << 20  # one short line per test row


def _source(params: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(the source in words, the repository path when it is a file)."""
    source = mapping(mapping(params.get("data")).get("source"))
    for kind in ("csv", "parquet"):
        if isinstance(source.get(kind), str):
            return f"{kind}: {source[kind]}", source[kind]
    if isinstance(source.get("sklearn"), str):
        return f"sklearn: {source['sklearn']}", None
    return None, None


def _data(
    files: Files,
    layout: Layout,
    params: Mapping[str, Any],
    stages: Sequence[graphs.StageIO],
    hashes: Mapping[str, str],
    lineage: Mapping[str, Any],
    train_rows: int | None,
    test_rows: int | None,
    missing: list[Missing],
) -> DataEvidence | None:
    source, _ = _source(params)
    prepare = next((s for s in stages if s.name == "prepare"), None)
    source_files = tuple((d, hashes.get(d)) for d in (prepare.deps if prepare else ()))
    path = layout.data_report.as_posix()
    raw, why = files.cached(path, hashes.get(path))
    report = json_object(raw)
    if raw is None:
        missing.append(Missing(path, why or "not found"))
    elif report is None:
        missing.append(Missing(path, "not a JSON object"))
    report = report or {}
    dropped = tuple(
        sorted(
            (str(k), v) for k, v in mapping(report.get("dropped")).items() if integer(v) is not None
        )
    )
    rows_out = integer(report.get("rows_out"))
    settings = mapping(mapping(params.get("data")).get("split"))
    validation: int | None = None
    if settings.get("validation") is None:
        validation = 0 if settings else None
    elif rows_out is not None and train_rows is not None and test_rows is not None:
        validation = rows_out - train_rows - test_rows
    split = (("train", train_rows), ("validation", validation), ("test", test_rows))
    if source is None and not report and not source_files and not settings:
        return None
    return DataEvidence(
        source=source,
        source_files=source_files,
        clean_md5=hashes.get(layout.clean.as_posix()),
        data_sha256=text_of(lineage.get("data_sha256")),
        rows_in=integer(report.get("rows_in")),
        rows_out=rows_out,
        dropped=dropped,
        split=split,
        split_settings=settings,
        split_how=(
            "train: the rows each candidate was trained on (reports/train/); test: the rows "
            "of the test split scored in plots/; validation: the clean rows left"
        ),
    )


def _candidates(
    files: Files,
    layout: Layout,
    names: Sequence[str],
    selected: str | None,
    hashes: Mapping[str, str],
    missing: list[Missing],
) -> tuple[list[CandidateEvidence], int | None]:
    legacy = json_object(files.read(layout.legacy_candidates_report.as_posix()))
    legacy_entries = mapping((legacy or {}).get("candidates"))
    found: list[CandidateEvidence] = []
    train_rows: int | None = None
    for name in names:
        report = json_object(files.read(layout.candidate_report(name).as_posix()))
        if report is None:  # an older mllc's one file for every candidate
            report = mapping(legacy_entries.get(name)) or None
        if report is None:
            missing.append(
                Missing(layout.candidate_report(name).as_posix(), f"not found at {files.where}")
            )
        path = layout.train_report(name).as_posix()
        raw, why = files.cached(path, hashes.get(path))
        train = json_object(raw)
        if train is None:
            missing.append(Missing(path, why or "not a JSON object"))
        train = train or {}
        rows = integer(train.get("rows"))
        train_rows = train_rows if train_rows is not None else rows
        search = train.get("search")
        found.append(
            CandidateEvidence(
                name=name,
                selected=name == selected,
                estimator=text_of(train.get("estimator")),
                params=mapping(train.get("params")),
                search=mapping(search) if isinstance(search, Mapping) else None,
                validated_on=text_of((report or {}).get("validated_on")),
                validation=metric_values((report or {}).get("validation")),
                test=metric_values((report or {}).get("test")),
                train_rows=rows,
                note=text_of((report or {}).get("note")),
            )
        )
    return found, train_rows


def _verdicts(gates: Sequence[str], test: Mapping[str, Any]) -> tuple[GateVerdict, ...]:
    try:
        results = evaluate(gates, test)
    except ValueError:
        return ()
    return tuple(GateVerdict(r.gate, r.passed, r.text()) for r in results)


def _shown(value: Any) -> str:
    if value is None or value == {}:
        return "none"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
    return str(value)


def _gates(record: Mapping[str, Any]) -> list[str]:
    gates = record.get("gates")
    return [g for g in gates if isinstance(g, str)] if isinstance(gates, list) else []


def gather(
    root: Path,
    name: str,
    version: str,
    files: Files,
    *,
    registered: RegisteredVersion | None = None,
) -> Card:
    """The card of ``name``'s ``version`` from ``files``: a registered version (with its
    registry entry) or, with ``registered`` None, the version apply is about to tag."""
    layout = Layout(name)
    missing: list[Missing] = []
    lock = lock_data(files.read(layout.dvc_lock.as_posix()))
    if lock is None:
        missing.append(
            Missing(layout.dvc_lock.as_posix(), f"missing or unreadable at {files.where}")
        )
    dvc_doc = yaml_data(files.read(layout.dvc_yaml.as_posix()))
    params = mapping(yaml_data(files.read(layout.params.as_posix())))
    if not params:
        missing.append(Missing(layout.params.as_posix(), f"missing or unreadable at {files.where}"))
    record = mapping(yaml_data(files.read(layout.record.as_posix())))
    if not record:
        missing.append(Missing(layout.record.as_posix(), f"missing or unreadable at {files.where}"))
    # the lifecycle record in the checkout, for a registered version: what changed since
    checkout: dict[str, Any] = {}
    if registered is not None:
        checkout = mapping(yaml_data(Workspace(root).read(layout.record.as_posix())))
    hashes = graphs.lock_hashes(lock)
    stages, stage_problems = graphs.stages_of(layout.dvc_yaml.as_posix(), dvc_doc, lock)

    # the selection and its metrics: the registry's (what status shows), else metrics.json
    metrics_file = json_object(files.read(layout.metrics.as_posix()))
    recorded = registered.metrics if registered is not None else None
    metrics = dict(recorded or metrics_file or {})
    if not metrics:
        missing.append(
            Missing(layout.metrics.as_posix(), f"missing or unreadable at {files.where}")
        )
    selected = text_of(metrics.get("model"))

    # lineage: the registry tag's payload, else lineage.json (cache or workspace)
    payload = records.tag_payload(root, name, version) if registered is not None else {}
    lineage = mapping(payload.get("lineage"))
    if not lineage:
        path = layout.lineage.as_posix()
        raw, why = files.cached(path, hashes.get(path))
        lineage = json_object(raw) or {}
        if not lineage:
            missing.append(Missing(path, why or "not a JSON object"))

    names = sorted(mapping(params.get("models"))) or sorted(
        s.name.split("@", 1)[1] for s in stages if s.name.startswith("train@")
    )
    candidates, train_rows = _candidates(files, layout, names, selected, hashes, missing)

    task = mapping(params.get("problem")).get("task")
    confusion: Confusion | None = None
    residuals: Residuals | None = None
    test_rows: int | None = None
    plot = "confusion" if task != "regression" else "residuals"
    raw_plot = files.read(layout.plot(plot).as_posix(), PLOT_MAX_BYTES)
    if raw_plot is None:
        missing.append(Missing(layout.plot(plot).as_posix(), f"not found at {files.where}"))
    elif plot == "confusion":
        confusion = records.confusion(raw_plot)
        test_rows = confusion.rows if confusion else None
    else:
        residuals = records.residuals(raw_plot)
        test_rows = residuals.rows if residuals else None

    data = _data(files, layout, params, stages, hashes, lineage, train_rows, test_rows, missing)

    evaluation: Evaluation | None = None
    test = mapping(metrics.get("test"))
    gates = _gates(record)
    if metrics or confusion or residuals:
        gates_now: tuple[GateVerdict, ...] | None = None
        if checkout and _gates(checkout) != gates:
            gates_now = _verdicts(_gates(checkout), test)
        evaluation = Evaluation(
            metric=text_of(metrics.get("metric")),
            selected=selected,
            test=test,
            validation=mapping(metrics.get("validation")),
            gates=_verdicts(gates, test),
            gates_from=layout.record.as_posix(),
            gates_now=gates_now,
            confusion=confusion,
            residuals=residuals,
        )

    metadata = mapping(record.get("metadata"))
    now = mapping(checkout.get("metadata"))
    changed = tuple(
        (key, _shown(now.get(key)))
        for key in ("description", "owner", "labels", "intended_use", "limitations")
        if now and now.get(key) != metadata.get(key)
    )
    env_record = sorted(mapping(record.get("environments")))
    deployments: tuple[Period, ...] = ()
    monitored: tuple[MonitorEvidence, ...] = ()
    if registered is not None:
        history = assignments(root, name)
        deployments = records.periods(history, version)
        envs = sorted({*env_record, *history, *mapping(checkout.get("environments"))})
        monitored = records.monitoring(root, name, version, envs)
        verified = records.verification(root, name, registered)
    else:
        verified = Verification(
            "pending", "not yet verified (the card was written when apply registered the version)"
        )
    running = {p.environment for p in deployments if p.stopped is None}
    ran = list(dict.fromkeys(p.environment for p in deployments))
    source, source_path = _source(params)
    graph = graphs.build(
        name,
        version,
        registered.commit if registered else None,
        stages,
        hashes,
        layout.model.as_posix(),
        source=source if source_path is None else None,
        environments=[(env, env in running) for env in ran],
        problems=stage_problems,
    )
    libraries = tuple(sorted((str(k), str(v)) for k, v in mapping(lineage.get("versions")).items()))
    model_md5 = registered.model_md5 if registered else hashes.get(layout.model.as_posix())
    problems = list(files.problems)
    return Card(
        name=name,
        version=version,
        at_apply=registered is None,
        commit=registered.commit if registered else None,
        registered=registered.created if registered else None,
        model_md5=model_md5,
        description=text_of(metadata.get("description")) or "",
        owner=text_of(metadata.get("owner")),
        metadata_now=changed,
        labels=tuple(sorted((str(k), str(v)) for k, v in mapping(metadata.get("labels")).items())),
        intended_use=text_of(metadata.get("intended_use")),
        limitations=text_of(metadata.get("limitations")),
        data=data,
        candidates=tuple(candidates),
        evaluation=evaluation,
        deployments=deployments,
        environments=tuple(env_record),
        monitoring=monitored,
        verification=verified,
        lineage=LineageFacts(
            spec_sha256=text_of(record.get("spec_sha256")),
            commit=registered.commit if registered else None,
            model_md5=model_md5,
            model_sha256=text_of(lineage.get("model_sha256")),
            data_sha256=text_of(lineage.get("data_sha256")),
            params_sha256=text_of(lineage.get("params_sha256")),
            libraries=libraries,
            registered_by=text_of(payload.get("mllc_version")),
            trained_on=text_of(mapping(lineage.get("compute")).get("where")),
        ),
        graph=graph,
        missing=tuple(dict.fromkeys([*missing, *problems])),
    )


def find_version(root: Path, ref: str) -> tuple[str, RegisteredVersion]:
    """``NAME`` (its newest version) or ``NAME@vX.Y.Z`` -> (name, the registered version)."""
    name, sep, wanted = ref.partition("@")
    versions = list_versions(root, name)
    if not versions:
        raise CardError(f"{name} has no registered version (run `mllc apply` to register one)")
    if not sep:
        return name, max(versions, key=lambda v: sort_key(v.version))
    for v in versions:
        if v.version == wanted:
            return name, v
    known = ", ".join(v.version for v in versions)
    raise CardError(f"{name}@{wanted} is not a registered version (registered: {known})")


def card_of(root: Path, ref: str) -> Card:
    """The card of a registered version (``NAME`` for its newest)."""
    name, version = find_version(root, ref)
    return gather(root, name, version.version, AtCommit(root, version.commit), registered=version)


def graph_of(root: Path, ref: str) -> graphs.Graph:
    """The lineage graph of ``NAME@vX.Y.Z``: its commit's stages and hashes, the version
    and the environments that ran it."""
    if "@" not in ref:
        raise CardError(f"expected NAME@vX.Y.Z, not {ref!r} (e.g. {ref}@v1.0.0)")
    name, version = find_version(root, ref)
    layout = Layout(name)
    files = AtCommit(root, version.commit)
    lock = lock_data(files.read(layout.dvc_lock.as_posix()))
    dvc_doc = yaml_data(files.read(layout.dvc_yaml.as_posix()))
    params = mapping(yaml_data(files.read(layout.params.as_posix())))
    stages, problems = graphs.stages_of(layout.dvc_yaml.as_posix(), dvc_doc, lock)
    if lock is None:
        problems.append(f"{layout.dvc_lock.as_posix()} is missing or unreadable at {files.where}")
    deployments = records.periods(assignments(root, name), version.version)
    running = {p.environment for p in deployments if p.stopped is None}
    ran = list(dict.fromkeys(p.environment for p in deployments))
    source, source_path = _source(params)
    return graphs.build(
        name,
        version.version,
        version.commit,
        stages,
        graphs.lock_hashes(lock),
        layout.model.as_posix(),
        source=source if source_path is None else None,
        environments=[(env, env in running) for env in ran],
        problems=problems,
    )


def pending_card(root: Path, name: str) -> Card:
    """The card of the version apply is about to register for the workspace's model: named
    as the registry will name it (:func:`mllc.semver.next_version` over the names in use)."""
    return gather(root, name, next_version(records.version_names(root, name)), Workspace(root))
