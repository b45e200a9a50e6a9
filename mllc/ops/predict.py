"""``mllc predict``: send rows to a deployed environment's V2 endpoint, return its answer.

Rows come from a CSV file, a JSON file or inline JSON: a list of records
(``[{"col": 1}, ...]``), a mapping of columns (``{"col": [1, 2]}``) or a V2
request body (``{"inputs": [...]}``), sent as is. Each column becomes one V2
input (the pandas-codec layout KServe's sklearn runtime also accepts).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mllc import gitcmd
from mllc.errors import MllcError
from mllc.spec.repository import load_specs
from mllc.targets import local


def _number(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _is_file(source: str) -> bool:
    if source.lstrip().startswith(("[", "{")):
        return False  # inline JSON (and possibly longer than a file name may be)
    try:
        return Path(source).is_file()
    except OSError:
        return False


def read_rows(source: str) -> dict[str, Any]:
    """A V2 request body from a file path or inline JSON."""
    path = Path(source)
    is_file = _is_file(source)
    if path.suffix.lower() == ".csv" and is_file:
        with open(path, newline="", encoding="utf-8") as fh:
            records: Any = [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    else:
        text = path.read_text(encoding="utf-8") if is_file else source
        try:
            records = json.loads(text)
        except ValueError as exc:
            raise MllcError(f"--input is neither a CSV/JSON file nor JSON: {exc}") from None
    if isinstance(records, dict) and "inputs" in records:
        return records
    if isinstance(records, dict):
        columns = {str(k): v if isinstance(v, list) else [v] for k, v in records.items()}
    elif isinstance(records, list) and all(isinstance(r, dict) for r in records) and records:
        names = list(dict.fromkeys(k for r in records for k in r))
        columns = {n: [r.get(n) for r in records] for n in names}
    else:
        raise MllcError("--input must hold rows: a list of records or a mapping of columns")
    return {"inputs": [_tensor(name, values) for name, values in columns.items()]}


def _tensor(name: str, values: list[Any]) -> dict[str, Any]:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        datatype = "BOOL"
    elif present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        datatype = "FP64"
    else:
        datatype = "BYTES"
        values = [None if v is None else str(v) for v in values]
    return {"name": name, "shape": [len(values)], "datatype": datatype, "data": values}


def predict(root: Path, lifecycle: str, environment: str, body: dict[str, Any]) -> dict[str, Any]:
    specs = {spec.metadata.name: spec for _, spec in load_specs(["specs"])}
    spec = specs.get(lifecycle)
    if spec is None:
        raise MllcError(f"no lifecycle {lifecycle!r} in specs/ (known: {', '.join(specs)})")
    env = spec.environments.get(environment)
    if env is None:
        raise MllcError(f"{lifecycle} has no environment {environment!r}")
    if env.target != "local":
        raise MllcError(
            f"{lifecycle}/{environment} runs on {env.target}: send V2 requests to its "
            "InferenceService URL (the same protocol)"
        )
    running = [s for s in local.servers(root, lifecycle, environment) if local.alive(s.pid)]
    if not running:
        raise MllcError(f"no server runs {lifecycle}/{environment}: run 'mllc apply'")
    server = running[-1]
    token_var = env.token.split(":", 1)[1] if env.token else None
    token = os.environ.get(token_var) if token_var else None
    if token_var and not token:
        raise MllcError(f"{lifecycle}/{environment} requires a token: set {token_var}")
    try:
        status, answer = local.request(
            server.host,
            server.port,
            "POST",
            f"/v2/models/{lifecycle}/infer",
            body,
            token,
            timeout=30.0,
        )
    except OSError as exc:
        raise MllcError(f"cannot reach {server.host}:{server.port}: {exc}") from None
    if status != 200 or not isinstance(answer, dict):
        detail = answer.get("error") if isinstance(answer, dict) else answer
        raise MllcError(f"the server answered {status}: {detail}")
    return answer


def _sorted_labels(values: set[str]) -> list[str]:
    """Class labels in scikit-learn's order (``classes_`` is sorted): numbers by value."""
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def version_classes(root: Path, lifecycle: str, version: str) -> list[str] | None:
    """The classes of a registered classifier, from the confusion plot its tagged
    commit holds (the test split's actual labels); None when that cannot be told."""
    plot = f"{lifecycle}@{version}:pipelines/{lifecycle}/plots/confusion.csv"
    proc = gitcmd.run(root, "show", plot)
    if proc.returncode != 0:
        return None
    rows = csv.DictReader(proc.stdout.decode("utf-8", "replace").splitlines())
    try:
        labels = {row["actual"] for row in rows if row.get("actual") is not None}
    except (csv.Error, KeyError):
        return None
    return _sorted_labels(labels) if labels else None


def _class_labels(preds: list[Any], width: int, classes: Sequence[str] | None) -> list[str]:
    """Names of the probability columns, in the order of the model's sorted classes:
    the version's classes when known, else the predictions' values when they show
    every class, else the position."""
    if classes is not None and len(classes) == width:
        return [f"P({label})" for label in classes]
    seen = _sorted_labels({str(p) for p in preds})
    if len(seen) == width:
        return [f"P({label})" for label in seen]
    return [f"P(class #{i + 1})" for i in range(width)]


def render(answer: dict[str, Any], classes: Sequence[str] | None = None) -> str:
    """A table: the row's index in the input, the prediction, and (for a classifier
    with probabilities) each class's probability."""
    outputs = {o.get("name"): o for o in answer.get("outputs", []) if isinstance(o, dict)}
    preds = (outputs.get("predict") or {}).get("data") or []
    proba = outputs.get("predict_proba") or {}
    width = (proba.get("shape") or [0, 0])[-1] if proba else 0
    probs = proba.get("data") or []
    table = [["row", "prediction", *_class_labels(preds, width, classes)]]
    for i, p in enumerate(preds):
        row = [str(i), str(p)]
        row += [f"{x:.3f}" for x in probs[i * width : (i + 1) * width]] if width else []
        table.append(row)
    sizes = [max(len(r[c]) for r in table if c < len(r)) for c in range(len(table[0]))]
    lines = [f"# {answer.get('model_name')} {answer.get('model_version')}"]
    lines += ["  ".join(cell.ljust(sizes[c]) for c, cell in enumerate(r)).rstrip() for r in table]
    return "\n".join(lines) + "\n"
