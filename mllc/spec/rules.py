"""Checks across sections of a spec, run on the raw document.

They read plain data defensively (anything malformed is left to the models,
which report it), so a spec's cross-section mistakes are reported in the same
run as its structural ones: every error at once. Each rule yields
``(path, message)``; the loader turns paths into file positions.
"""

from __future__ import annotations

import difflib  # lazily: only on the error path
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel

from mllc.spec import checks, deployment, rollout, training, vocab
from mllc.spec.fields import parse_gate

Path = tuple[str | int, ...]
Finding = tuple[Path, str]


def _get(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _task(doc: Any) -> str | None:
    task = _get(doc, "problem", "task")
    return task if isinstance(task, str) and task in vocab.METRICS else None


def _unknown_metric(metric: str, task: str) -> str:
    known = vocab.METRICS[task]

    close = difflib.get_close_matches(metric, list(known), n=1, cutoff=0.6)
    other = "regression" if task == "classification" else "classification"
    if metric in vocab.METRICS[other]:
        why = f"{metric!r} is a {other} metric, but problem.task is {task}"
    else:
        why = f"{metric!r} is not a {task} metric"
    hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"
    return why + hint


def metrics_fit_task(doc: Any) -> Iterator[Finding]:
    """The primary metric, every gate metric and the monitored metric exist for the task."""
    task = _task(doc)
    if task is None:
        return
    metric = _get(doc, "problem", "metric")
    if isinstance(metric, str) and metric not in vocab.METRICS[task]:
        yield ("problem", "metric"), _unknown_metric(metric, task)
    gates = _get(doc, "gates")
    for i, gate in enumerate(gates if isinstance(gates, list) else []):
        if not isinstance(gate, str):
            continue
        try:
            name, _, _ = parse_gate(gate)
        except ValueError:
            continue  # reported by the model
        if name not in vocab.METRICS[task]:
            yield ("gates", i), _unknown_metric(name, task)
    perf = _get(doc, "monitoring", "performance")
    pmetric = _get(perf, "metric")
    if isinstance(pmetric, str):
        if pmetric not in vocab.METRICS[task]:
            yield ("monitoring", "performance", "metric"), _unknown_metric(pmetric, task)
        else:
            higher = vocab.higher_is_better(pmetric)
            if higher and _get(perf, "max") is not None:
                yield (
                    ("monitoring", "performance", "max"),
                    f"{pmetric} is better when higher: a breach is set with 'min'",
                )
            if not higher and _get(perf, "min") is not None:
                yield (
                    ("monitoring", "performance", "min"),
                    f"{pmetric} is better when lower: a breach is set with 'max'",
                )


def estimators_fit_task(doc: Any, allowed: dict[str, str]) -> Iterator[Finding]:
    task = _task(doc)
    models = _get(doc, "models")
    if task is None or not isinstance(models, dict):
        return
    for name, cand in models.items():
        est = _get(cand, "estimator")
        if isinstance(est, str) and allowed.get(est) not in (None, task):
            yield (
                ("models", name, "estimator"),
                f"{est.rsplit('.', 1)[-1]} is a {allowed[est]} estimator, "
                f"but problem.task is {task}",
            )


def _feature_lists(doc: Any) -> Iterator[tuple[Path, str, list[Any]]]:
    for kind in ("numeric", "categorical"):
        cols = _get(doc, "features", kind, "columns")
        if isinstance(cols, list):
            yield ("features", kind, "columns"), kind, cols


def target_not_a_feature(doc: Any) -> Iterator[Finding]:
    target = _get(doc, "problem", "target")
    if not isinstance(target, str):
        return
    for path, _, cols in _feature_lists(doc):
        if target in cols:
            yield (*path, cols.index(target)), f"{target!r} is problem.target, not a feature"


def columns_coherent(doc: Any) -> Iterator[Finding]:
    """Declared column types agree with how features use them; no column is used twice."""
    declared = _get(doc, "data", "columns")
    declared = declared if isinstance(declared, dict) else {}
    exclude = _get(doc, "features", "exclude")
    excluded = {e for e in exclude if isinstance(e, str)} if isinstance(exclude, list) else set()
    seen: dict[str, str] = {}
    for path, kind, cols in _feature_lists(doc):
        for i, col in enumerate(cols):
            if not isinstance(col, str):
                yield (*path, i), "a column name must be text"
                continue
            ctype = _get(declared.get(col), "type")
            if kind == "numeric" and ctype in ("category", "string"):
                yield (*path, i), f"{col!r} is declared {ctype} in data.columns, not numeric"
            if col in excluded:
                yield (*path, i), f"{col!r} is also in features.exclude"
            if col in seen:
                yield (*path, i), f"{col!r} is already a {seen[col]} feature"
            seen[col] = kind
    target = _get(doc, "problem", "target")
    task = _task(doc)
    ttype = _get(declared.get(target) if isinstance(target, str) else None, "type")
    if task == "regression" and ttype in ("category", "string", "bool"):
        yield ("data", "columns", target, "type"), f"the regression target cannot be {ttype}"


def split_fits_task(doc: Any) -> Iterator[Finding]:
    if _get(doc, "data", "split", "stratify") is True and _task(doc) == "regression":
        yield ("data", "split", "stratify"), "a stratified split needs a classification task"
    source = _get(doc, "data", "source", "sklearn")
    task = _task(doc)
    if isinstance(source, str) and task and vocab.SKLEARN_DATASETS.get(source, task) != task:
        yield (
            ("data", "source", "sklearn"),
            f"dataset {source!r} is a {vocab.SKLEARN_DATASETS[source]} dataset, "
            f"but problem.task is {task}",
        )


def impute_has_strategy(doc: Any) -> Iterator[Finding]:
    if _get(doc, "data", "cleaning", "missing") != "impute":
        return
    for kind in ("numeric", "categorical"):
        if _get(doc, "features", kind, "impute") == "none":
            yield (
                ("features", kind, "impute"),
                "data.cleaning.missing is 'impute' but this strategy is 'none'",
            )


def environment_order(doc: Any) -> Iterator[Finding]:
    """``after`` names another environment and the promotion order has no cycle."""
    envs = _get(doc, "environments")
    if not isinstance(envs, dict):
        return
    after: dict[str, str] = {}
    for name, env in envs.items():
        prev = _get(env, "after")
        if not isinstance(prev, str):
            continue
        if prev == name:
            yield ("environments", name, "after"), "an environment cannot come after itself"
        elif prev not in envs:
            close = difflib.get_close_matches(prev, [str(e) for e in envs], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            yield ("environments", name, "after"), f"no environment named {prev!r}{hint}"
        else:
            after[name] = prev
    # Each environment has at most one `after`: walk each chain once, remembering
    # what earlier walks settled, so a long chain costs linear time.
    order = {name: i for i, name in enumerate(envs)}
    settled: set[str] = set()
    for start in after:
        if start in settled:
            continue
        chain: list[str] = []
        on_chain: set[str] = set()
        node = start
        while node in after and node not in settled and node not in on_chain:
            chain.append(node)
            on_chain.add(node)
            node = after[node]
        settled |= on_chain
        if node in on_chain:  # came back onto this walk: a cycle
            cycle = chain[chain.index(node) :]
            first = min(cycle, key=order.__getitem__)
            loop = " -> ".join([*cycle[cycle.index(first) :], *cycle[: cycle.index(first)]])
            yield (
                ("environments", first, "after"),
                f"promotion order has a cycle: {loop} -> {first}",
            )


def ports_unique(doc: Any) -> Iterator[Finding]:
    envs = _get(doc, "environments")
    if not isinstance(envs, dict):
        return
    used: dict[Any, str] = {}
    for name, env in envs.items():
        port = _get(env, "port")
        if isinstance(port, int) and not isinstance(port, bool):
            if port in used:
                yield (
                    ("environments", name, "port"),
                    f"port {port} is already used by environment {used[port]!r}",
                )
            else:
                used[port] = name


_SECTIONS: tuple[tuple[tuple[str, ...], Callable[[Any], list[str]], type[BaseModel]], ...] = (
    (("data", "source"), checks.source, training.Source),
    (("data", "columns", "*"), checks.column, training.Column),
    (("data", "split"), checks.split, training.Split),
    (("models", "*"), checks.candidate, training.Candidate),
    (("models", "*", "search"), checks.search, training.Search),
    (("environments", "*"), checks.environment, deployment.Environment),
    (("environments", "*", "rollout"), checks.rollout, rollout.Rollout),
    (("environments", "*", "replay"), checks.replay, rollout.Replay),
    (("monitoring", "performance"), checks.performance, deployment.Performance),
)


def _at(doc: Any, pattern: tuple[str, ...], path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Mappings at ``pattern`` (``*``: every key of a mapping) in the raw document."""
    if not pattern:
        if isinstance(doc, dict):
            yield path, doc
        return
    if not isinstance(doc, dict):
        return
    head, rest = pattern[0], pattern[1:]
    keys = list(doc) if head == "*" else [head] if head in doc else []
    for key in keys:
        yield from _at(doc[key], rest, (*path, key))


def section_checks(doc: Any) -> Iterator[Finding]:
    """The models' section checks, run even where Pydantic skipped them."""
    for pattern, check, model in _SECTIONS:
        for path, section in _at(doc, pattern):
            if not set(section) <= set(model.model_fields):
                continue  # a misspelt key would only cause knock-on errors here
            for message in check(section):
                yield path, message


RULES: tuple[Callable[[Any], Iterator[Finding]], ...] = (
    metrics_fit_task,
    target_not_a_feature,
    columns_coherent,
    split_fits_task,
    impute_has_strategy,
    environment_order,
    ports_unique,
    section_checks,
)


def check(doc: Any, estimators: dict[str, str]) -> list[Finding]:
    findings = [f for rule in RULES for f in rule(doc)]
    findings.extend(estimators_fit_task(doc, estimators))
    return findings
