"""Runtime inputs from files: data arrays (.npy, .csv) and point files (JSON).

Every failure is a `CfcError` that points at the declaration it concerns (or at the key in
the JSON file) and says what to do next. Nothing here ever writes to the user's files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cfc_dsl.diagnostics import CfcError, ErrorKind, Source, Span, did_you_mean, plural
from cfc_dsl.model import DataSpec, DType


def load_array(path: Path, spec: DataSpec) -> np.ndarray:
    """Load `path` for the data declaration `spec`; dtype is checked, shape is not (yet)."""
    if not path.is_file():
        raise CfcError(ErrorKind.DATA, f"data file '{path}' for '{spec.name}' does not exist",
                       spec.span, f"pass an existing .npy or .csv file: --data {spec.name}=PATH")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif suffix == ".csv":
            array = _load_csv(path)
        else:
            raise CfcError(ErrorKind.DATA, f"cannot read '{path}': unknown file type '{suffix}'",
                           spec.span, "data files are .npy (numpy.save) or .csv (comma-separated)")
    except CfcError:
        raise
    except (OSError, ValueError) as exc:
        raise CfcError(ErrorKind.DATA, f"cannot read '{path}' for '{spec.name}': {exc}",
                       spec.span, "write it with numpy.save, or as plain comma-separated numbers"
                       ) from None
    if array.dtype.kind not in "biuf":
        raise CfcError(ErrorKind.DATA, f"'{path}' holds {array.dtype} values, not numbers",
                       spec.span, "save a numeric array")
    if len(spec.shape) == 1 and array.ndim == 2 and 1 in array.shape:
        array = array.ravel()
    if spec.dtype is DType.INT:
        return _as_int(array, path, spec)
    if array.size and not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise CfcError(ErrorKind.DATA, f"'{path}' has a non-finite value at {list(map(int, bad))}",
                       spec.span, "replace NaN and Inf values before running")
    return np.ascontiguousarray(array, dtype=np.float64)


def _load_csv(path: Path) -> np.ndarray:
    text = path.read_text()
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), 1)
             if ln.strip() and not ln.lstrip().startswith("#")]
    if lines:
        try:
            [float(v) for v in lines[0][1].split(",")]
        except ValueError:
            lines = lines[1:]  # a header row
    rows: list[list[float]] = []
    for number, line in lines:
        row: list[float] = []
        for cell in line.split(","):
            try:
                row.append(float(cell))
            except ValueError:
                raise ValueError(f"line {number} has '{cell.strip()}', which is not a number"
                                 ) from None
        if rows and len(row) != len(rows[0]):
            raise ValueError(f"line {number} has {plural(len(row), 'column')} but line "
                             f"{lines[0][0]} has {len(rows[0])}")
        rows.append(row)
    array = np.array(rows, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    return array


def _as_int(array: np.ndarray, path: Path, spec: DataSpec) -> np.ndarray:
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array) | (array != np.round(array))
        if np.any(bad):
            where = list(map(int, np.argwhere(bad)[0]))
            raise CfcError(ErrorKind.DATA,
                           f"'{spec.name}' is declared ': int' but '{path}' has {array[tuple(where)]} "
                           f"at {where}", spec.span,
                           "store whole numbers (numpy.save(path, a.astype(int))) or declare the "
                           "data ': real'")
    return np.ascontiguousarray(array, dtype=np.int64)


def load_point(path: Path, variables: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Read a point file `{"var": number | nested list}`; shapes are checked here."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise CfcError(ErrorKind.ARGUMENT, f"cannot read point file '{path}': {exc.strerror}",
                       None, "pass a JSON file like {\"eta\": [0.1, 0.2]}") from None
    source = Source(str(path), text)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        span = Span(source, exc.lineno, exc.colno, exc.lineno, exc.colno + 1)
        raise CfcError(ErrorKind.ARGUMENT, f"invalid JSON: {exc.msg}", span,
                       "a point file maps variable names to numbers or nested lists") from None
    if not isinstance(raw, dict):
        raise CfcError(ErrorKind.ARGUMENT, "a point file must be a JSON object",
                       Span(source, 1, 1, 1, 2), "write {\"eta\": [0.1, 0.2], \"gate\": 0.0}")
    out: dict[str, np.ndarray] = {}
    for name, value in raw.items():
        span = key_span(source, name)
        if name not in variables:
            raise CfcError(ErrorKind.ARGUMENT, f"unknown variable '{name}' in point file", span,
                           did_you_mean(name, set(variables)))
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise CfcError(ErrorKind.ARGUMENT, f"'{name}' must be a number or a nested list of "
                           "numbers", span, "check for strings or ragged lists") from None
        shape = variables[name]
        if array.shape != shape and not (array.ndim == 0 and shape == ()):
            raise CfcError(ErrorKind.ARGUMENT, f"'{name}' has shape {list(array.shape)} in the "
                           f"point file but the model's is {list(shape)}", span,
                           "give one value per element (nested lists for several dimensions)")
        if not np.all(np.isfinite(array)):
            raise CfcError(ErrorKind.ARGUMENT, f"'{name}' has a non-finite value", span,
                           "point files hold finite numbers only")
        out[name] = array
    return out


def key_span(source: Source, key: str) -> Span:
    needle = json.dumps(key)
    offset = source.text.find(needle)
    if offset < 0:
        return Span(source, 1, 1, 1, 2)
    line = source.text.count("\n", 0, offset) + 1
    column = offset - (source.text.rfind("\n", 0, offset) + 1) + 1
    return Span(source, line, column, line, column + len(needle))
