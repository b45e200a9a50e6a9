"""Hypothesis strategies shared by the fuzz and round-trip tests.

* :func:`mutated_spec_texts` starts from valid spec documents and breaks them,
  at the tree level (delete/rename/replace/insert/duplicate/swap) and at the
  text level (characters, lines, tags, anchors, tabs, nesting, raw bytes).
* :func:`valid_spec_docs` builds plausibly valid documents from valid pieces.
* :func:`dump` writes a document in one of several YAML styles, or JSON.
"""

from __future__ import annotations

import copy
import json
import re
import string
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck
from hypothesis import strategies as st

from mllc.spec import vocab

ROOT = Path(__file__).resolve().parent.parent
IRIS_TEXT = (ROOT / "specs" / "iris.yaml").read_text(encoding="utf-8")

# ------------------------------------------------------------------ dumping


class _Dumper(yaml.CSafeDumper):
    """libyaml's SafeDumper (fast) that can write ints too large for ``str()`` (as hex)."""


def _represent_int(dumper: yaml.CSafeDumper, data: int) -> yaml.ScalarNode:
    if data.bit_length() > 10_000:
        return dumper.represent_scalar("tag:yaml.org,2002:int", hex(data))
    return dumper.represent_int(data)


# Plain scalars a YAML 1.1 or 1.2 reader may take for a number, bool or null.
_NOT_A_STRING = re.compile(
    r"[-+.0-9][-+._:0-9a-zA-Z]*|[Tt]rue|TRUE|[Ff]alse|FALSE|[Nn]ull|NULL|~|[Yy]es|[Nn]o|[Oo]n|[Oo]ff"
)


def _represent_str(dumper: yaml.CSafeDumper, data: str) -> yaml.ScalarNode:
    # Quoted, so that the text means the doc we built whichever YAML version reads it.
    style = "'" if _NOT_A_STRING.fullmatch(data) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(int, _represent_int)
_Dumper.add_representer(str, _represent_str)


def dump(doc: Any, style: int = 0) -> str:
    """``doc`` as YAML (block, flow, mixed, narrow, ascii) or JSON, by ``style``."""
    style %= 6
    if style == 5:
        try:
            return json.dumps(doc, indent=1, ensure_ascii=False)
        except ValueError:  # an int too large for str(): YAML can write it in hex
            style = 0
    return yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=style == 4,
        default_flow_style=(False, True, None, False, False)[style],
        allow_unicode=style != 3,
        width=(80, 80, 100, 20, 80)[style],
    )


# ------------------------------------------------------------------ valid bases

DIABETES = """
apiVersion: mllc/v1
kind: Lifecycle
metadata: {name: diabetes, description: Disease progression after one year, owner: ml-team}
problem: {task: regression, target: target, metric: rmse}
data:
  source: {sklearn: diabetes}
  columns:
    bmi: {type: float, min: -1, max: 1}
    target: {type: float, nullable: false}
  cleaning: {duplicates: keep, missing: impute, invalid: fail}
  split: {test: 0.25, seed: 7}
features:
  numeric: {impute: mean, scale: robust}
  categorical: {impute: constant, encode: ordinal}
models:
  ridge:
    estimator: sklearn.linear_model.Ridge
    params: {alpha: 1.0}
    search: {method: random, cv: 3, n_iter: 10, space: {alpha: [0.1, 1.0, 10.0]}}
  gbr: {estimator: sklearn.ensemble.GradientBoostingRegressor}
gates: ["rmse <= 60", "r2 > 0.3"]
monitoring:
  schedule: "*/15 0-6 1,15 * 1-5"
  drift: {method: ks, threshold: 0.05}
  performance: {metric: mae, max: 50}
"""

CHURN_CSV = """
apiVersion: mllc/v1
kind: Lifecycle
metadata:
  name: churn
  labels: {team: growth, tier: gold}
problem: {task: classification, target: churned, metric: f1_weighted}
data:
  source: {csv: data/churn.csv}
  columns:
    customer_id: {type: string, nullable: false}
    age: {type: int, min: 18, max: 120}
    spend: {type: float, min: 0}
    plan: {type: category, values: [basic, pro, 3, true]}
    active: {type: bool}
    churned: {type: bool, nullable: false}
  cleaning: {duplicates: drop, missing: fail, invalid: drop}
  split: {test: 0.2, validation: 0.2, stratify: true, seed: 0}
features:
  numeric: {columns: [age, spend], scale: minmax}
  categorical: {columns: [plan, active]}
  exclude: [customer_id]
models:
  hgb:
    estimator: sklearn.ensemble.HistGradientBoostingClassifier
    params: {max_iter: 200, class_weight: null, early_stopping: true}
    search:
      method: grid
      space: {learning_rate: [0.05, 0.1], max_leaf_nodes: [15, 31, null]}
gates: ["roc_auc >= 0.8"]
"""

COMMAND = """
apiVersion: mllc/v1
kind: Lifecycle
metadata: {name: own-model}
problem: {task: classification, target: label, metric: accuracy}
data:
  source: {parquet: data/events.parquet}
models:
  own:
    command: python src/train.py --epochs 3
    deps: [src/train.py, data/events.parquet]
  baseline: {estimator: sklearn.dummy.DummyClassifier, params: {strategy: most_frequent}}
"""

KUBERNETES = """
apiVersion: mllc/v1
kind: Lifecycle
metadata: {name: wine, owner: ml@example.com}
problem: {task: classification, target: target, metric: accuracy}
data: {source: {sklearn: wine}}
models:
  svc: {estimator: sklearn.svm.SVC, params: {C: 2.0, probability: true}}
gates: ["accuracy >= 0.9"]
environments:
  staging: {target: local, port: 8081}
  canary: {target: local, port: 8082, host: 0.0.0.0, token: "env:MLLC_TOKEN", after: staging}
  production:
    target: kubernetes
    model: v1.2.0
    after: canary
    require: [beats_champion]
    kubernetes:
      namespace: ml
      replicas: 2
      storage_uri: s3://models/wine
      service_account: model-reader
      cpu: "2"
      memory: 1Gi
monitoring:
  schedule: "0 6 * * *"
  performance: {metric: log_loss, max: 0.5}
  on_breach: retrain
"""

BASE_TEXTS: tuple[str, ...] = (IRIS_TEXT, DIABETES, CHURN_CSV, COMMAND, KUBERNETES)
BASE_DOCS: tuple[dict[str, Any], ...] = tuple(yaml.safe_load(t) for t in BASE_TEXTS)

# ------------------------------------------------------------------ weird values


def huge_int() -> int:
    """An int that str() refuses (more than 4300 decimal digits); YAML reads it in hex."""
    return 16**4000 - 1


_VOCAB = sorted(
    {
        *vocab.METRICS,
        *vocab.CLASSIFICATION_METRICS,
        *vocab.REGRESSION_METRICS,
        *vocab.SKLEARN_DATASETS,
        *vocab.ESTIMATORS,
        "local",
        "kubernetes",
        "latest",
        "v1.0.0",
        "1.0.0",
        "beats_champion",
        "staging",
        "production",
        "grid",
        "random",
        "psi",
        "ks",
        "retrain",
        "alert",
        "impute",
        "none",
        "drop",
        "fail",
        "mllc/v1",
        "Lifecycle",
        "env:TOKEN",
        "0.0.0.0",
        "s3://bucket/x",
        "accuracy >= 0.9",
        "rmse <= 1",
        "0 6 * * *",
        "data/x.csv",
        "../x.csv",
        "/abs/x.csv",
    }
)

_ODD_STRINGS = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\t",
    "\n",
    "\r\n",
    "é",
    "日本語",
    "🙂",
    "\u202e",
    "\ufeff",
    "\x85",
    "\u2028",
    "\x1b[31m",
    "x" * 5000,
    "ab " * 2000,
    "-",
    "~",
    "null",
    "true",
    "no",
    ".inf",
    ".nan",
    "2024-01-01",
    "0x1F",
    "<<",
    "=",
    "*a",
    "&a",
    "!!python/object:os.system",
    "{a: 1}",
    "[1, 2]",
    "'",
    '"',
    "#",
    "C:\\data",
)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([2**63 - 1, 2**63, -(2**63) + 1, -(2**63)]),  # the loader's bound
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(_ODD_STRINGS),
    st.sampled_from(_VOCAB),
    st.builds(huge_int),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=5,
)

# ------------------------------------------------------------------ tree mutations

Path_ = tuple[Any, ...]


def _walk(doc: Any, path: Path_ = ()) -> list[tuple[Path_, Any]]:
    """Every (path, value) in pre-order, the root first."""
    out = [(path, doc)]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out.extend(_walk(value, (*path, key)))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out.extend(_walk(value, (*path, i)))
    return out


def _at(doc: Any, path: Path_) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def replaced(doc: dict[str, Any], path: Path_, value: Any) -> dict[str, Any]:
    """A deep copy of ``doc`` with ``value`` at ``path`` (whose parents must exist)."""
    out = copy.deepcopy(doc)
    _at(out, path[:-1])[path[-1]] = value
    return out


def _typo(key: str, kind: int, pos: int, junk: str) -> str:
    if not key:
        return junk or "x"
    i = pos % len(key)
    kind %= 9
    if kind == 0:
        return key[:i] + key[i + 1 :]  # drop a character
    if kind == 1:
        return key[:i] + key[i] + key[i:]  # double it
    if kind == 2 and len(key) > 1:
        i = min(i, len(key) - 2)
        return key[:i] + key[i + 1] + key[i] + key[i + 2 :]  # swap two
    if kind == 3:
        return key.upper() if pos % 2 else key.capitalize()
    if kind == 4:
        return key.replace("_", "-") if "_" in key else key + "s"
    if kind == 5:
        return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key) + ("" if "_" in key else "_")
    if kind == 6:
        return key + " "
    if kind == 7:
        return key[:i] + junk + key[i:]
    return junk


def _mutate_tree(doc: Any, op: tuple[Any, ...]) -> Any:
    """Apply one mutation; returns the (possibly new) root."""
    kind, a, b, payload = op
    nodes = _walk(doc)
    inner = nodes[1:] or nodes
    path, value = inner[a % len(inner)]
    if kind == "replace":
        if not path:
            return payload
        _at(doc, path[:-1])[path[-1]] = payload
    elif kind == "delete" and path:
        del _at(doc, path[:-1])[path[-1]]
    elif kind == "rename" and path and isinstance(path[-1], str):
        parent = _at(doc, path[:-1])
        new = _typo(path[-1], b, b >> 4, payload if isinstance(payload, str) else "x")
        items = [(new if k == path[-1] else k, v) for k, v in parent.items()]
        parent.clear()
        parent.update(items)  # a typo that collides with a sibling key drops one
    elif kind == "insert":
        containers = [v for _, v in nodes if isinstance(v, dict | list)]
        container = containers[a % len(containers)]
        if isinstance(container, dict):
            key = payload[0] if payload[0] not in container else payload[0] + "_x"
            container[key] = payload[1]
        else:
            container.insert(b % (len(container) + 1), payload[1])
    elif kind == "duplicate":
        lists = [v for _, v in nodes if isinstance(v, list) and v]
        if lists:
            lst = lists[a % len(lists)]
            i = b % len(lst)
            lst.insert(i, copy.deepcopy(lst[i]))
    elif kind in ("swap", "copy"):
        other, other_value = inner[b % len(inner)]
        n = min(len(path), len(other))
        if path and other and path[:n] != other[:n]:  # neither contains the other
            _at(doc, path[:-1])[path[-1]] = copy.deepcopy(other_value)
            if kind == "swap":
                _at(doc, other[:-1])[other[-1]] = value
    elif kind == "retype" and path:
        # the same content as another type: 3 -> "3", "x" -> ["x"], {..} -> [..]
        new: Any
        if isinstance(value, dict):
            new = list(value.values()) if b % 2 else list(value)
        elif isinstance(value, list):
            new = dict(enumerate(value)) if b % 2 else (value[0] if value else None)
        elif isinstance(value, str):
            new = [value] if b % 2 else {value: None}
        elif isinstance(value, int) and value.bit_length() > 10_000:
            new = hex(value)  # str() refuses it
        else:
            new = str(value) if b % 2 else [value]
        if isinstance(new, dict):
            new = {str(k): v for k, v in new.items()}
        _at(doc, path[:-1])[path[-1]] = new
    return doc


_INT = st.integers(min_value=0, max_value=2**16)
TREE_OPS = st.one_of(
    st.tuples(st.just("replace"), _INT, _INT, VALUES),
    st.tuples(st.just("delete"), _INT, _INT, st.none()),
    st.tuples(st.just("rename"), _INT, _INT, st.text(max_size=6)),
    st.tuples(st.just("insert"), _INT, _INT, st.tuples(st.text(max_size=10), VALUES)),
    st.tuples(st.just("duplicate"), _INT, _INT, st.none()),
    st.tuples(st.sampled_from(["swap", "copy", "retype"]), _INT, _INT, st.none()),
)

# ------------------------------------------------------------------ text mutations

_YAML_CHARS = string.ascii_letters[:6] + string.digits[:3] + " \t\n:-,[]{}&*!|>'\"%@`#?~.\\"
_SNIPPETS = (
    "!!python/object:os.system ",
    "!!python/object/apply:os.system ['echo hi'] ",
    "!!python/object/new:tuple [[1]] ",
    "!!python/name:os.system ",
    "!!binary aGVsbG8= ",
    "!!set {a, b} ",
    "!!omap [a: 1] ",
    "!!pairs [a: 1] ",
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!null ",
    "!!str ",
    "!!map ",
    "!!seq ",
    "!!timestamp ",
    "!!merge ",
    "!custom ",
    "!<tag:example.com,2000:x> ",
    "&a ",
    "*a",
    "&a [1, 2]",
    "*undefined",
    "<<: *a\n",
    "<<: {x: 1}\n",
    "? [a]\n: b\n",
    "? {a: 1}\n: c\n",
    "|\n",
    ">-\n",
    "\t",
    "\n---\n",
    "\n...\n",
    "%YAML 1.1\n---\n",
    "%TAG ! tag:example.com,2000:\n---\n",
    "'unterminated",
    '"\\uZZZZ"',
    '"\\x4"',
    "\x00",
    "\ufeff",
    "\x85",
    "\u2028",
    "\r",
    "\x1b",
    "\x7f",
    "\ud7ff",
    "\ufffe",
    "0x" + "F" * 3700,
    "0" + "7" * 5000,
    "1" + ":59" * 3000,
    "9" * 5000,
    "0o777",
    "1:30:00",
    "1_000",
    ".inf",
    "-.inf",
    ".nan",
    "1.0e+400",
    "0b1010",
    "~",
    "yes",
    "=",
    "2001-12-14t21:59:43.10-05:00",
    "[" * 70 + "]" * 70,
    "{a: " * 70 + "1" + "}" * 70,
    "[" * 1200,
    "- " * 80 + "x",
)
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n"
    for i in range(8)
)
_WHOLE = (
    "",
    "\n",
    "# only a comment\n",
    "---\n",
    "~\n",
    "[]\n",
    "- a\n- b\n",
    "just a string\n",
    "42\n",
    "a: 1\n---\nb: 2\n",
    "a: &a {b: *a}\n",
    "- &x [*x]\n",
    "apiVersion: mllc/v1\nkind: Lifecycle\n",
    "{" * 300,
    "a:\n" + "".join("  " * i + "a:\n" for i in range(1, 80)),
)
_BYTES_TEXT = st.binary(max_size=40).map(lambda b: b.decode("utf-8", errors="replace"))
SNIPPETS = st.one_of(
    st.sampled_from(_SNIPPETS),
    st.text(alphabet=_YAML_CHARS, max_size=8),
    st.text(max_size=6),
    _BYTES_TEXT,
)


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _mutate_text(text: str, op: tuple[Any, ...]) -> str:
    kind, a, b, payload = op
    n = len(text) + 1
    if kind == "delete":
        i = a % n
        return text[:i] + text[i + 1 + b % 20 :]
    if kind == "insert":
        i = a % n
        return text[:i] + payload + text[i:]
    if kind == "replace":
        i = a % n
        return text[:i] + payload + text[i + 1 + b % 8 :]
    if kind == "whole":
        return payload
    if kind == "wrap":
        which = a % 7
        if which == 0:
            return text.replace("\n", "\r\n")
        if which == 1:
            return "\ufeff" + text
        if which == 2:
            return "---\n" + text + "...\n"
        if which == 3:
            return text + "---\n" + text
        if which == 4:
            return "\n".join(" " * (b % 4) + line for line in _lines(text))
        if which == 5:
            return "%YAML 1.2\n---\n" + text
        return text.replace("  ", "\t", 1 + b % 3)
    lines = _lines(text)
    i = a % len(lines)
    line = lines[i]
    if kind == "line_delete":
        del lines[i]
    elif kind == "line_dup":  # at the same indentation: a duplicate key, or list item
        lines.insert(i + 1 + b % 3, line)
    elif kind == "line_swap":
        j = b % len(lines)
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "line_indent":
        shift = b % 7 - 3
        lines[i] = (" " * shift + line) if shift >= 0 else line[-shift:]
    elif kind == "line_tab":
        lines[i] = "\t" + line
    elif kind == "value":  # "key: value" -> "key: PAYLOAD value" or "key: PAYLOAD"
        head, sep, tail = line.partition(": ")
        if sep:
            lines[i] = head + sep + payload + ("" if b % 2 else tail)
        else:
            lines[i] = line + payload
    return "\n".join(lines)


TEXT_OPS = st.one_of(
    st.tuples(st.sampled_from(["delete", "insert", "replace", "value"]), _INT, _INT, SNIPPETS),
    st.tuples(
        st.sampled_from(
            ["line_delete", "line_dup", "line_swap", "line_indent", "line_tab", "wrap"]
        ),
        _INT,
        _INT,
        st.none(),
    ),
    st.tuples(
        st.just("whole"),
        _INT,
        _INT,
        st.one_of(st.sampled_from(_WHOLE), st.text(max_size=30), _BYTES_TEXT),
    ),
)


@st.composite
def mutated_spec_texts(draw: st.DrawFn) -> str:
    """A valid spec, broken by up to 4 tree mutations then up to 3 text mutations."""
    base = draw(st.integers(0, len(BASE_TEXTS) - 1))
    tree_ops = draw(st.lists(TREE_OPS, max_size=4))
    text_ops = draw(st.lists(TEXT_OPS, max_size=3))
    if tree_ops:
        doc: Any = copy.deepcopy(BASE_DOCS[base])
        for op in tree_ops:
            doc = _mutate_tree(doc, op)
        text = dump(doc, draw(st.integers(0, 5)))
    else:
        text = BASE_TEXTS[base]  # as written: comments, flow and block styles
    for op in text_ops:
        text = _mutate_text(text, op)
    return text


# ------------------------------------------------------------------ valid specs

NAME = st.from_regex(r"^[a-z][a-z0-9-]{0,20}[a-z0-9]$", fullmatch=True)
PARAM = st.from_regex(r"^[A-Za-z_][A-Za-z0-9_]{0,15}$", fullmatch=True)
SPACE_PARAM = st.builds(
    lambda a, b: f"{a}__{b}" if b else a, PARAM, st.none() | PARAM.filter(lambda s: s[0] != "_")
)
ENV_VAR = st.from_regex(r"^[A-Za-z_][A-Za-z0-9_]{0,15}$", fullmatch=True)
# Strings some YAML reader could take for something else (1.1 vs 1.2, timestamps...).
AMBIGUOUS = st.sampled_from(
    (
        *("1e3", "1e-05", "0o17", "010", "0x1F", "1_000", "1:30", ".inf", "+.5", "on", "yes"),
        *("No", "null", "~", "true", "False", "2024-01-01", "=", "<<", "-", "? x", "#x", " x "),
    )
)
TEXT = (
    st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=30)
    | AMBIGUOUS
)
NONBLANK = TEXT.filter(lambda s: s.strip() != "")
LABEL = st.from_regex(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?$", fullmatch=True)
FINITE = st.floats(allow_nan=False, allow_infinity=False)  # the loader refuses the others
INT64 = 2**63 - 1  # the loader refuses integers of larger magnitude
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-INT64, max_value=INT64) | FINITE | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
_SEGMENT = st.text(
    st.characters(exclude_characters="/\\\x00\n\r\t", exclude_categories=["Cs"]),
    min_size=1,
    max_size=10,
).filter(lambda s: s not in (".", "..") and s.strip() == s and not re.match(r"^[A-Za-z]:$", s))
REPO_PATH = (
    st.lists(_SEGMENT, min_size=1, max_size=3)
    .map("/".join)
    .filter(lambda p: not p.startswith(("~", "/")))
)


def _number(value: float, fmt: int) -> str:
    return ("{:g}", "{!r}", "{:.3f}", "{:e}", "{:+.2f}")[fmt % 5].format(value)


@st.composite
def gates(draw: st.DrawFn, task: str) -> str:
    metric = draw(st.sampled_from(sorted(vocab.METRICS[task])))
    op = draw(st.sampled_from([">=", "<=", ">", "<"]))
    number = _number(draw(st.floats(-1e6, 1e6)), draw(st.integers(0, 4)))
    pad = draw(st.sampled_from(["", " ", "  "]))
    return f"{pad}{metric}{pad or ' '}{op} {number}{pad}"


@st.composite
def columns(draw: st.DrawFn, ctype: str) -> dict[str, Any]:
    col: dict[str, Any] = {"type": ctype}
    if ctype in ("int", "float"):
        if ctype == "int":
            bounds = st.integers(-(10**9), 10**9)
        else:
            bounds = st.floats(-1e12, 1e12) | st.integers(-1000, 1000)
        lo, hi = sorted([draw(bounds), draw(bounds)])
        if draw(st.booleans()):
            col["min"] = lo
        if draw(st.booleans()):
            col["max"] = hi
    if ctype == "category" and draw(st.booleans()):
        col["values"] = draw(
            st.lists(
                st.one_of(TEXT, st.integers(-100, 100), st.booleans()),
                min_size=1,
                max_size=5,
                unique=True,
            )
        )
    if draw(st.booleans()):
        col["nullable"] = draw(st.booleans())
    return col


_CRON = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


@st.composite
def cron(draw: st.DrawFn) -> str:
    fields = []
    for lo, hi in _CRON:
        parts = []
        for _ in range(draw(st.integers(1, 2))):
            kind = draw(st.integers(0, 3))
            a, b = sorted([draw(st.integers(lo, hi)), draw(st.integers(lo, hi))])
            step = f"/{draw(st.integers(1, 10))}" if draw(st.booleans()) else ""
            parts.append(("*", str(a), f"{a}-{b}", "*")[kind] + (step if kind != 1 else ""))
        fields.append(",".join(parts))
    return " ".join(fields)


def _maybe(draw: st.DrawFn, target: dict[str, Any], key: str, strategy: Any) -> None:
    if draw(st.booleans()):
        target[key] = draw(strategy)


@st.composite
def candidates(draw: st.DrawFn, task: str) -> dict[str, Any]:
    if draw(st.integers(0, 4)) == 0:
        cand: dict[str, Any] = {"command": draw(NONBLANK)}
        _maybe(draw, cand, "deps", st.lists(REPO_PATH, max_size=3))
        return cand
    estimators = sorted(e for e, t in vocab.ESTIMATORS.items() if t == task)
    cand = {"estimator": draw(st.sampled_from(estimators))}
    _maybe(draw, cand, "params", st.dictionaries(PARAM, JSON_VALUES, max_size=4))
    if draw(st.booleans()):
        method = draw(st.sampled_from(["grid", "random"]))
        search: dict[str, Any] = {
            "method": method,
            "space": draw(
                st.dictionaries(
                    SPACE_PARAM,
                    st.lists(JSON_VALUES, min_size=1, max_size=4),
                    min_size=1,
                    max_size=3,
                )
            ),
        }
        _maybe(draw, search, "cv", st.integers(2, 50))
        if method == "random":
            _maybe(draw, search, "n_iter", st.integers(1, 10_000))
        cand["search"] = search
    return cand


def _fits_kubernetes(lifecycle: str, env: str, namespace: str | None) -> bool:
    """KServe and CronJob names derived from these stay within Kubernetes' limits."""
    isvc = f"{lifecycle}-{env}"
    predictor = f"{isvc}-predictor-{namespace or 'default'}"
    return len(predictor) <= 63 and len(f"{isvc}-monitor") <= 52


@st.composite
def environments(draw: st.DrawFn, lifecycle: str) -> dict[str, Any]:
    names = draw(st.lists(NAME, max_size=4, unique=True))
    ports = iter(draw(st.lists(st.integers(1024, 65535), min_size=4, max_size=4, unique=True)))
    envs: dict[str, Any] = {}
    for i, name in enumerate(names):
        env: dict[str, Any] = {"target": draw(st.sampled_from(["local", "kubernetes"]))}
        namespace = draw(st.none() | NAME)
        if env["target"] == "kubernetes" and not _fits_kubernetes(lifecycle, name, namespace):
            env["target"] = "local"
        if draw(st.booleans()):
            env["model"] = draw(
                st.just("latest") | st.builds("v{}.{}.{}".format, *[st.integers(0, 30)] * 3)
            )
        if i and draw(st.booleans()):
            env["after"] = names[draw(st.integers(0, i - 1))]  # earlier: never a cycle
        _maybe(draw, env, "require", st.lists(st.just("beats_champion"), max_size=2))
        if draw(st.booleans()):
            env["token"] = "env:" + draw(ENV_VAR)
        if env["target"] == "local":
            env["port"] = next(ports)
            if "token" in env:
                _maybe(
                    draw,
                    env,
                    "host",
                    st.sampled_from(["0.0.0.0", "10.0.0.7", "::", "ml.example.com"]),
                )
            else:
                _maybe(draw, env, "host", st.sampled_from(["127.0.0.1", "localhost", "::1"]))
        else:
            k8s: dict[str, Any] = {
                "storage_uri": draw(st.sampled_from(["s3", "gs", "pvc", "https", "azureblob"]))
                + "://"
                + draw(st.from_regex(r"^[a-z0-9][a-z0-9/._-]{0,20}$", fullmatch=True))
            }
            if namespace is not None:
                k8s["namespace"] = namespace
            _maybe(draw, k8s, "replicas", st.integers(0, 1000))
            _maybe(draw, k8s, "service_account", NAME)
            _maybe(draw, k8s, "context", TEXT)
            _maybe(
                draw, k8s, "cpu", st.from_regex(r"^[0-9]{1,4}(\.[0-9]{1,3})?m?$", fullmatch=True)
            )
            _maybe(
                draw,
                k8s,
                "memory",
                st.from_regex(r"^[0-9]{1,5}(\.[0-9]{1,2})?([EPTGM]i?|Ki|k|m)?$", fullmatch=True),
            )
            env["kubernetes"] = k8s
        envs[name] = env
    return envs


@st.composite
def valid_spec_docs(draw: st.DrawFn) -> dict[str, Any]:
    """A spec document built from valid pieces that agree with each other."""
    task = draw(st.sampled_from(["classification", "regression"]))
    metrics = sorted(vocab.METRICS[task])
    target = draw(NONBLANK)
    pool = draw(st.lists(NONBLANK.filter(lambda s: s != target), max_size=6, unique=True))
    roles = {c: draw(st.sampled_from(["numeric", "categorical", "exclude", "none"])) for c in pool}

    metadata: dict[str, Any] = {"name": draw(NAME)}
    _maybe(draw, metadata, "description", TEXT)
    _maybe(draw, metadata, "owner", TEXT)
    _maybe(draw, metadata, "labels", st.dictionaries(LABEL, LABEL | st.just(""), max_size=3))

    source_kind = draw(st.sampled_from(["sklearn", "csv", "parquet"]))
    if source_kind == "sklearn":
        source = {
            "sklearn": draw(
                st.sampled_from(sorted(d for d, t in vocab.SKLEARN_DATASETS.items() if t == task))
            )
        }
    else:
        source = {source_kind: draw(REPO_PATH)}
    data: dict[str, Any] = {"source": source}
    declared: dict[str, Any] = {}
    for col, role in roles.items():
        if draw(st.booleans()):
            allowed = (
                ["int", "float", "bool"]
                if role == "numeric"
                else ["int", "float", "category", "bool", "string"]
            )
            declared[col] = draw(columns(draw(st.sampled_from(allowed))))
    if draw(st.booleans()):
        ttypes = (
            ["int", "float"]
            if task == "regression"
            else ["int", "float", "category", "bool", "string"]
        )
        declared[target] = draw(columns(draw(st.sampled_from(ttypes))))
    if declared or draw(st.booleans()):
        data["columns"] = declared
    missing = draw(st.sampled_from(["drop", "fail", "impute"]))
    if draw(st.booleans()):
        data["cleaning"] = {"missing": missing}
        _maybe(draw, data["cleaning"], "duplicates", st.sampled_from(["drop", "keep"]))
        _maybe(draw, data["cleaning"], "invalid", st.sampled_from(["drop", "fail"]))
    else:
        missing = "drop"
    if draw(st.booleans()):
        split: dict[str, Any] = {}
        test = draw(st.floats(0.0, 0.8, exclude_min=True))
        split["test"] = test
        if draw(st.booleans()):
            split["validation"] = draw(
                st.floats(0.0, 0.9 - test, exclude_min=True).filter(lambda v: 0 < v < 1)
            )
        if task == "classification":
            _maybe(draw, split, "stratify", st.booleans())
        _maybe(draw, split, "seed", st.integers(0, 2**32 - 1))
        data["split"] = split

    doc: dict[str, Any] = {
        "apiVersion": "mllc/v1",
        "kind": "Lifecycle",
        "metadata": metadata,
        "problem": {"task": task, "target": target, "metric": draw(st.sampled_from(metrics))},
        "data": data,
    }
    if draw(st.booleans()) or pool:
        features: dict[str, Any] = {}
        numeric_imputes = ["mean", "median", "most_frequent"] + (
            [] if missing == "impute" else ["none"]
        )
        categorical_imputes = ["most_frequent", "constant"] + (
            [] if missing == "impute" else ["none"]
        )
        numeric: dict[str, Any] = {}
        _maybe(draw, numeric, "impute", st.sampled_from(numeric_imputes))
        _maybe(draw, numeric, "scale", st.sampled_from(["standard", "minmax", "robust", "none"]))
        categorical: dict[str, Any] = {}
        _maybe(draw, categorical, "impute", st.sampled_from(categorical_imputes))
        _maybe(draw, categorical, "encode", st.sampled_from(["onehot", "ordinal"]))
        for kind, part in (("numeric", numeric), ("categorical", categorical)):
            chosen = [c for c, r in roles.items() if r == kind]
            if chosen or draw(st.booleans()):
                part["columns"] = chosen
            if part or draw(st.booleans()):
                features[kind] = part
        excluded = [c for c, r in roles.items() if r == "exclude"]
        if excluded:
            features["exclude"] = excluded
        doc["features"] = features

    names = draw(st.lists(NAME, min_size=1, max_size=3, unique=True))
    doc["models"] = {name: draw(candidates(task)) for name in names}
    _maybe(draw, doc, "gates", st.lists(gates(task), max_size=3))
    _maybe(draw, doc, "environments", environments(metadata["name"]))
    if draw(st.booleans()):
        monitoring: dict[str, Any] = {"schedule": draw(cron())}
        if draw(st.booleans()):
            monitoring["drift"] = {}
            _maybe(draw, monitoring["drift"], "method", st.sampled_from(["psi", "ks"]))
            _maybe(draw, monitoring["drift"], "threshold", st.floats(0, 1e6, exclude_min=True))
        if draw(st.booleans()):
            metric = draw(st.sampled_from(metrics))
            bound = "min" if vocab.higher_is_better(metric) else "max"
            monitoring["performance"] = {
                "metric": metric,
                bound: draw(FINITE | st.integers(-10, 10)),
            }
        _maybe(draw, monitoring, "on_breach", st.sampled_from(["retrain", "alert"]))
        doc["monitoring"] = monitoring
    return doc


# Generated specs are big, slow to build and often filtered: health checks that
# would only complain about that.
GENERATED_INPUTS = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
