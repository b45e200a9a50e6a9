"""Open Inference Protocol V2 (KServe's) over JSON: request decoding, response encoding. Pure.

Two request layouts are accepted, both common among V2 clients:

- one input per feature column (MLServer's pandas codec): ``name`` is the
  column, ``shape`` is ``[N]`` or ``[N, 1]``;
- one input of shape ``[N, F]`` (Triton and NumPy style) whose F columns are
  the feature columns in the model metadata's order.

``data`` may be flat (row-major) or nested as the shape says. ``null`` in FP
and BYTES data is a missing value (NaN), which the model's imputers handle.
Every client mistake raises :class:`ProtocolError` with the HTTP status to
answer (422 for valid JSON that is not a valid request) and a message that
names the input and the problem. Triton's binary tensor extension is not
supported and says so.

Hostile input is refused the same way, never with a 500: JSON nested deeper
than the parser goes, ``NaN``/``Infinity`` (not JSON), shapes of more than
:data:`MAX_DIMS` dimensions or too large for numpy (:data:`MAX_EXTENT`), and numbers
out of range for the tensor's datatype (a 400-digit integer in FP64, 1e300 in FP32,
300 in INT8, -1 in UINT8).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

INT_TYPES = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
FP_TYPES = frozenset({"FP16", "FP32", "FP64"})
NUMERIC_TYPES = INT_TYPES | FP_TYPES
DATATYPES = NUMERIC_TYPES | {"BOOL", "BYTES"}
_FP_DTYPES = {"FP16": np.float16, "FP32": np.float32, "FP64": np.float64}
_INT_DTYPES: dict[str, type[np.integer[Any]]] = {
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
}  # fmt: skip
MAX_DIMS = 2  # [N], [N, 1] or [N, F]: all a tabular model takes
# numpy cannot even describe an array (an empty one included) whose dimensions multiply
# past its index range; no request body holds that many values anyway.
MAX_EXTENT = 2**31 - 1
_NAME_SHOWN = 80  # user-given names are cut in messages: they end up in logs
BINARY_UNSUPPORTED = (
    "binary tensor data is not supported; send JSON 'data' "
    "(tritonclient: set_data_from_numpy(array, binary_data=False))"
)


class ProtocolError(Exception):
    """A request the server cannot answer: ``status`` is the HTTP status to reply with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Tensor:
    """One tensor of the model metadata: a feature column (shape ``[-1]``) or an output."""

    name: str
    datatype: str
    shape: tuple[int, ...] = (-1,)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Schema:
    """What the model takes and gives. ``checked``: features whose datatype is known for sure
    (read off a fitted encoder or a numeric pipeline), so a mismatching request is refused."""

    features: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    checked: frozenset[str] = frozenset()

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]


@dataclass
class InferRequest:
    """A decoded request: one 1-D array per feature column, in the schema's order."""

    id: str | None
    columns: dict[str, np.ndarray]
    outputs: tuple[str, ...]


def shown(name: object) -> str:
    """``name`` quoted for a message, cut to a readable length."""
    text = str(name)
    if len(text) > _NAME_SHOWN:
        text = text[:_NAME_SHOWN] + "..."
    return repr(text)


def _invalid(message: str) -> ProtocolError:
    return ProtocolError(422, message)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON (send null for a missing value)")


def parse_json(body: bytes) -> Any:
    """The request body as JSON; ProtocolError 400 for anything that is not plain JSON."""
    try:
        return json.loads(body, parse_constant=_not_json)
    except RecursionError:
        raise ProtocolError(400, "malformed JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(400, f"malformed JSON: {exc}") from None


def decode_infer(doc: Any, schema: Schema) -> InferRequest:
    """Check a parsed JSON request against the schema and turn it into feature columns."""
    if not isinstance(doc, dict):
        raise _invalid("the request must be a JSON object with an 'inputs' list")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise _invalid("'id' must be a string")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise _invalid("'inputs' must be a non-empty list of tensors")
    tensors: dict[str, tuple[str, list[int], np.ndarray]] = {}
    for i, item in enumerate(inputs):
        name, datatype, shape, array = _decode_tensor(i, item)
        if name in tensors:
            raise _invalid(f"input {shown(name)} is given twice")
        tensors[name] = (datatype, shape, array)

    features = schema.feature_names
    single = next(iter(tensors))
    if len(tensors) == 1 and single not in features and len(tensors[single][1]) == 2:
        columns, datatypes = _matrix_columns(single, *tensors[single], features)
    else:
        columns, datatypes = _named_columns(tensors, features)
    if len(next(iter(columns.values()))) == 0:
        raise _invalid("the inputs hold no rows: at least one is needed")
    _check_datatypes(schema, datatypes)
    return InferRequest(
        id=request_id, columns=columns, outputs=_requested_outputs(doc.get("outputs"), schema)
    )


def _decode_tensor(index: int, item: Any) -> tuple[str, str, list[int], np.ndarray]:
    if not isinstance(item, dict):
        raise _invalid(f"inputs[{index}] must be an object with name, shape, datatype and data")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise _invalid(f"inputs[{index}] needs a 'name' string")
    shape = item.get("shape")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise _invalid(f"input {shown(name)}: 'shape' must be a list of non-negative integers")
    if len(shape) > MAX_DIMS:
        raise _invalid(
            f"input {shown(name)}: 'shape' has {len(shape)} dimensions; this server takes "
            "[N] or [N, 1] per feature column, or [N, F]"
        )
    if math.prod(d for d in shape if d) > MAX_EXTENT:
        raise _invalid(
            f"input {shown(name)}: 'shape' {shape} is larger than any request this server "
            f"takes (its dimensions multiply past {MAX_EXTENT:,})"
        )
    datatype = item.get("datatype")
    if datatype not in DATATYPES:
        raise _invalid(
            f"input {shown(name)}: datatype {shown(datatype)} is not a V2 datatype "
            f"(one of {', '.join(sorted(DATATYPES))})"
        )
    params = item.get("parameters")
    if isinstance(params, dict) and "binary_data_size" in params:
        raise _invalid(f"input {shown(name)}: {BINARY_UNSUPPORTED}")
    if "data" not in item:
        raise _invalid(f"input {shown(name)} has no 'data'")
    array = _decode_data(name, datatype, shape, item["data"])
    return name, datatype, shape, array


def _decode_data(name: str, datatype: str, shape: list[int], data: Any) -> np.ndarray:
    if not isinstance(data, list):
        raise _invalid(f"input {shown(name)}: 'data' must be a list")
    if datatype == "BYTES":
        flat = _flatten_strings(name, data)
        array = np.empty(len(flat), dtype=object)
        array[:] = flat  # element-wise: a list of str must not become a 'U' array
    else:
        try:
            array = np.asarray(data)
        except ValueError:
            raise _invalid(f"input {shown(name)}: nested 'data' lists of unequal lengths") from None
        array = _typed(name, datatype, array, data)
    count = math.prod(shape)
    if array.size != count:
        raise _invalid(
            f"input {shown(name)}: shape {shape} needs {count} values, 'data' has {array.size}"
        )
    return array.reshape(shape)


def _typed(name: str, datatype: str, array: np.ndarray, data: list[Any]) -> np.ndarray:
    """The array in the datatype's dtype, after checking its values are of that kind and range.

    numpy infers the dtype from the JSON values at C speed; only arrays holding
    ``null`` or integers beyond 64 bits (object dtype) are checked element by element.
    """
    kind = array.dtype.kind
    if datatype == "BOOL":
        if kind != "b" and array.size:
            raise _invalid(f"input {shown(name)}: BOOL data must be true/false")
        return array.astype(bool)
    if datatype in INT_TYPES:
        return _integers(name, datatype, array, data)
    if kind == "O":
        flat = array.ravel()
        for i, value in enumerate(flat):
            if value is None:
                flat[i] = math.nan
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise _invalid(
                    f"input {shown(name)}: {datatype} data must be numbers or null; "
                    f"value {i} is {type(value).__name__}"
                )
        try:
            array = flat.astype(np.float64)
        except OverflowError:  # an integer beyond any float
            raise _out_of_range(name, datatype, flat, _first_unfloatable(flat)) from None
    elif kind not in "iuf" and array.size:
        raise _invalid(f"input {shown(name)}: {datatype} data must be numbers or null")
    with np.errstate(over="ignore", invalid="ignore"):
        typed = array.astype(_FP_DTYPES[datatype])
    infinite = np.isinf(typed)  # 1e400 parses as inf; 1e300 is inf in FP32
    if infinite.any():
        index = int(np.flatnonzero(infinite.ravel())[0])
        raise _out_of_range(name, datatype, array.ravel(), index)
    return typed


def _integers(name: str, datatype: str, array: np.ndarray, data: list[Any]) -> np.ndarray:
    dtype = _INT_DTYPES[datatype]
    info = np.iinfo(dtype)
    if array.dtype.kind in "iu":
        if array.size and (array.min() < info.min or array.max() > info.max):
            flat = array.ravel()
            index = int(np.flatnonzero((flat < info.min) | (flat > info.max))[0])
            raise _out_of_range(name, datatype, flat, index)
        return array.astype(np.int64) if array.dtype.kind != "u" else array
    if not array.size:
        return array.astype(np.int64)
    # numpy made floats or objects of the values: not integers, integers past 64 bits, or
    # UINT64 values past INT64's range mixed with smaller ones.
    values = _flat_values(data)
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid(
                f"input {shown(name)}: {datatype} data must be integers; "
                f"value {i} is {type(value).__name__}"
            )
        if not info.min <= value <= info.max:
            raise _out_of_range(name, datatype, [value], 0, i)
    return np.array(values, dtype=np.uint64 if datatype == "UINT64" else np.int64).reshape(
        array.shape
    )


def _flat_values(data: list[Any]) -> list[Any]:
    """The leaves of nested lists in order, without recursion (any depth is safe)."""
    out: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            out.append(value)
        else:
            stack.pop()
    return out


def _first_unfloatable(values: np.ndarray) -> int:
    for i, value in enumerate(values):
        try:
            float(value)
        except OverflowError:
            return i
    return 0  # pragma: no cover - called only after an OverflowError


def _out_of_range(
    name: str, datatype: str, values: Any, index: int, shown_index: int | None = None
) -> ProtocolError:
    value = values[index]
    if isinstance(value, float) and math.isinf(value):
        text = "a number too large for any float"
    elif isinstance(value, int) and value.bit_length() > 256:
        text = f"an integer of {len(str(abs(value)))} digits"
    else:
        text = str(value)
    return _invalid(
        f"input {shown(name)}: value {index if shown_index is None else shown_index} "
        f"({text}) is out of range for {datatype}"
    )


def _flatten_strings(name: str, data: list[Any]) -> list[Any]:
    out: list[Any] = []
    for i, value in enumerate(_flat_values(data)):
        if isinstance(value, str):
            out.append(value)
        elif value is None:
            out.append(math.nan)  # pandas' own missing value in text columns
        else:
            raise _invalid(
                f"input {shown(name)}: BYTES data must be strings or null; "
                f"value {i} is {type(value).__name__}"
            )
    return out


def _matrix_columns(
    name: str, datatype: str, shape: list[int], array: np.ndarray, features: list[str]
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    if shape[1] != len(features):
        raise _invalid(
            f"input {shown(name)} has shape {shape}, but the model takes {len(features)} "
            f"feature columns ({', '.join(features)}); send [N, {len(features)}] in that "
            "order, or one input per column named after it"
        )
    columns = {column: array[:, i] for i, column in enumerate(features)}
    return columns, dict.fromkeys(features, datatype)


def _named_columns(
    tensors: dict[str, tuple[str, list[int], np.ndarray]], features: list[str]
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    unknown = [n for n in tensors if n not in set(features)]
    if unknown:
        raise _invalid(
            f"input {shown(unknown[0])} is not a feature column of the model (columns: "
            f"{', '.join(features)}); send one input per column, or one input of shape "
            f"[N, {len(features)}]"
        )
    missing = [f for f in features if f not in tensors]
    if missing:
        raise _invalid(f"no input for feature column(s) {', '.join(shown(m) for m in missing)}")
    rows: int | None = None
    columns: dict[str, np.ndarray] = {}
    for feature in features:
        _, shape, array = tensors[feature]
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise _invalid(f"input {shown(feature)}: shape {shape} is not [N] or [N, 1]")
        if rows is None:
            rows = shape[0]
        elif shape[0] != rows:
            raise _invalid(
                f"input {shown(feature)} has {shape[0]} rows, the inputs before it {rows}"
            )
        columns[feature] = array.reshape(-1)
    return columns, {f: tensors[f][0] for f in features}


def compatible(expected: str, given: str) -> bool:
    """Whether a column of ``expected`` datatype may be sent as ``given``."""
    if expected in NUMERIC_TYPES:
        return given in NUMERIC_TYPES or given == "BOOL"
    return given == expected


def _check_datatypes(schema: Schema, given: dict[str, str]) -> None:
    for feature in schema.features:
        sent = given[feature.name]
        if feature.name in schema.checked and not compatible(feature.datatype, sent):
            raise _invalid(
                f"feature column {shown(feature.name)} is {feature.datatype}, the request "
                f"sends {sent}"
            )


def _requested_outputs(value: Any, schema: Schema) -> tuple[str, ...]:
    available = schema.output_names
    if value is None:
        return tuple(available)
    if not isinstance(value, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in value
    ):
        raise _invalid("'outputs' must be a list of objects with a 'name'")
    names: list[str] = []
    for item in value:
        name = item["name"]
        if name not in available:
            raise _invalid(f"unknown output {shown(name)} (outputs: {', '.join(available)})")
        if name not in names:
            names.append(name)
    return tuple(names) if names else tuple(available)


def datatype_of(array: np.ndarray) -> str:
    """The V2 datatype a numpy array is sent as."""
    kind = array.dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return "INT64"
    if kind == "f":
        return "FP64"
    return "BYTES"


def plain_values(array: np.ndarray) -> list[Any]:
    """Flat, row-major JSON values: NaN and infinities become null (JSON has neither)."""
    flat = array.reshape(-1)
    kind = flat.dtype.kind
    if kind == "f":
        values: list[Any] = flat.tolist()
        if not np.isfinite(flat).all():
            values = [v if math.isfinite(v) else None for v in values]
        return values
    if kind in "biu":
        return list(flat.tolist())
    return [None if _is_nan(v) else v if isinstance(v, str) else _item(v) for v in flat]


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _item(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def output_tensor(name: str, array: np.ndarray) -> dict[str, Any]:
    datatype = datatype_of(array)
    data = plain_values(array)
    if datatype == "BYTES":
        data = [v if v is None else str(v) for v in data]
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": data}


def infer_response(
    model_name: str,
    version: str,
    request_id: str,
    outputs: Sequence[dict[str, Any]],
    model_md5: str,
) -> dict[str, Any]:
    return {
        "model_name": model_name,
        "model_version": version,
        "id": request_id,
        "parameters": {"model_md5": model_md5},
        "outputs": list(outputs),
    }


def model_metadata(
    name: str, version: str, schema: Schema, model_md5: str, environment: str
) -> dict[str, Any]:
    return {
        "name": name,
        "versions": [version],
        "platform": "sklearn",
        "inputs": [f.to_json() for f in schema.features],
        "outputs": [o.to_json() for o in schema.outputs],
        "parameters": {"model_md5": model_md5, "environment": environment},
    }


def server_metadata(version: str) -> dict[str, Any]:
    return {"name": "mllc", "version": version, "extensions": []}


def error_body(message: str) -> dict[str, Any]:
    """The V2 error response: ``{"error": message}``."""
    return {"error": message}
