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
            _check_npy_magic(path, spec)
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
    if not spec.shape and array.size == 1:  # a scalar: 3 in a .csv, or an array of one
        array = array.reshape(())
    if spec.dtype is DType.INT:
        return _as_int(array, path, spec)
    if array.size and not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0] if array.ndim else []
        raise CfcError(ErrorKind.DATA, f"'{path}' has a non-finite value at {list(map(int, bad))}",
                       spec.span, "replace NaN and Inf values before running")
    # np.array, not np.ascontiguousarray: that one turns a 0-d array into shape (1,)
    return np.array(array, dtype=np.float64, order="C")


_NPY_MAGIC = b"\x93NUMPY"


def _check_npy_magic(path: Path, spec: DataSpec) -> None:
    """np.load takes a file that is not .npy for a pickle and says so; say what it is."""
    with open(path, "rb") as f:
        head = f.read(len(_NPY_MAGIC))
    if head != _NPY_MAGIC:
        raise CfcError(ErrorKind.DATA, f"'{path}' is not a .npy file (it does not start with "
                       "the NumPy header)", spec.span,
                       "write it with numpy.save, or name a comma-separated file '.csv'")


def _load_csv(path: Path) -> np.ndarray:
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a BOM is not part of the first cell
    except UnicodeDecodeError as exc:
        raise ValueError(f"it is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                         f"{exc.start}); is it a binary file?") from None
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), 1)
             if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise ValueError("the file has no rows; an empty array is written with numpy.save, "
                         "e.g. numpy.save(path, numpy.zeros((0, 2)))")
    header: list[str] = []
    if _is_header(lines[0][1]):
        header = lines[0][1].split(",")
        lines = lines[1:]
    rows: list[list[float]] = []
    for number, line in lines:
        row: list[float] = []
        for column, cell in enumerate(line.split(","), 1):
            try:
                row.append(float(cell))
            except ValueError:
                raise ValueError(_bad_cell(number, column, cell)) from None
        if rows and len(row) != len(rows[0]):
            raise ValueError(f"line {number} has {plural(len(row), 'column')} but line "
                             f"{lines[0][0]} has {len(rows[0])}")
        rows.append(row)
    if not rows:  # a header alone: no rows, as many columns as it names
        return np.zeros((0,) if len(header) == 1 else (0, len(header)))
    array = np.array(rows, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    return array


def _is_header(line: str) -> bool:
    """A header names its columns: every cell starts with a letter or '_' (or a quote).
    A first row with a number in it is data, and a typo in it is an error, not a header."""
    cells = [c.strip().strip("\"'") for c in line.split(",")]
    return all(c[:1].isalpha() or c[:1] == "_" for c in cells) and not any(
        _is_number(c) for c in cells)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _bad_cell(number: int, column: int, cell: str) -> str:
    where = f"line {number}, column {column}"
    if not cell.strip():
        return f"{where} is empty (a trailing or doubled comma?)"
    for sep, word in (("\t", "tabs"), (";", "semicolons"), (" ", "spaces")):
        if sep in cell.strip():
            return (f"{where} has '{cell.strip()}', which is not a number; the file seems to "
                    f"separate its cells with {word}, but cfc reads commas")
    return f"{where} has '{cell.strip()}', which is not a number"


def _as_int(array: np.ndarray, path: Path, spec: DataSpec) -> np.ndarray:
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array) | (array != np.round(array))
        if np.any(bad):
            where = _first(bad)
            raise CfcError(ErrorKind.DATA,
                           f"'{spec.name}' is declared ': int' but '{path}' has {array[tuple(where)]} "
                           f"at {where}", spec.span,
                           "store whole numbers (numpy.save(path, a.astype(int))) or declare the "
                           "data ': real'")
    # int64 holds what the kernels index with; a larger value must not wrap around silently
    if array.dtype.kind in "uf" and array.size:
        too_big = np.abs(array) >= 2.0 ** 63 if array.dtype.kind == "f" else array > INT64_MAX
        if np.any(too_big):
            where = _first(too_big)
            raise CfcError(ErrorKind.DATA,
                           f"'{path}' has {array[tuple(where)]:g} at {where}, too large for a "
                           "64-bit integer", spec.span,
                           f"integer data must lie within +-{INT64_MAX:.3g}; check the file")
    return np.array(array, dtype=np.int64, order="C")


INT64_MAX = np.iinfo(np.int64).max


def _first(mask: np.ndarray) -> list[int]:
    """The index (as a list) of the first True in `mask`; [] for a 0-d mask."""
    return list(map(int, np.argwhere(mask)[0])) if mask.ndim else []


def load_point(path: Path, variables: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Read a point file `{"var": number | nested list}`; shapes are checked here."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CfcError(ErrorKind.ARGUMENT, f"cannot read point file '{path}': {exc.strerror}",
                       None, "pass a JSON file like {\"eta\": [0.1, 0.2]}") from None
    except UnicodeDecodeError as exc:
        raise CfcError(ErrorKind.ARGUMENT, f"point file '{path}' is not UTF-8 text (byte "
                       f"{exc.object[exc.start]:#04x} at offset {exc.start})", None,
                       "pass a JSON file like {\"eta\": [0.1, 0.2]}") from None
    source = Source(str(path), text)
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        seen: dict[str, object] = {}
        for key, value in items:
            if key in seen:
                duplicates.append(key)
            seen[key] = value
        return seen

    try:
        raw = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        span = Span(source, exc.lineno, exc.colno, exc.lineno, exc.colno + 1)
        raise CfcError(ErrorKind.ARGUMENT, f"invalid JSON: {exc.msg}", span,
                       "a point file maps variable names to numbers or nested lists") from None
    if not isinstance(raw, dict):
        raise CfcError(ErrorKind.ARGUMENT, "a point file must be a JSON object",
                       Span(source, 1, 1, 1, 2), "write {\"eta\": [0.1, 0.2], \"gate\": 0.0}")
    if duplicates and duplicates[0] in raw:
        name = duplicates[0]
        raise CfcError(ErrorKind.ARGUMENT, f"'{name}' is given twice in the point file",
                       key_span(source, name, last=True), "keep one entry per variable")
    out = PointValues()
    for name, value in raw.items():
        span = key_span(source, name)
        if name not in variables:
            raise CfcError(ErrorKind.ARGUMENT, f"unknown variable '{name}' in point file", span,
                           did_you_mean(name, set(variables)))
        try:
            if _has_bool(value):
                raise TypeError("true/false")
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise CfcError(ErrorKind.ARGUMENT, f"'{name}' must be a number or a nested list of "
                           "numbers", span, "check for strings, true/false or ragged lists") from None
        shape = variables[name]
        if array.shape != shape and not (array.ndim == 0 and shape == ()):
            raise CfcError(ErrorKind.ARGUMENT, f"'{name}' has shape {list(array.shape)} in the "
                           f"point file but the model's is {list(shape)}", span,
                           "give one value per element (nested lists for several dimensions)")
        if not np.all(np.isfinite(array)):
            raise CfcError(ErrorKind.ARGUMENT, f"'{name}' has a non-finite value", span,
                           "point files hold finite numbers only")
        out[name] = array
        out.spans[name] = span
    return out


class PointValues(dict[str, np.ndarray]):
    """A point file's values, with the span of each key (for bind's bounds messages)."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: dict[str, Span] = {}


def _has_bool(value: object) -> bool:
    if isinstance(value, bool):
        return True
    return isinstance(value, list) and any(_has_bool(v) for v in value)


def key_span(source: Source, key: str, last: bool = False) -> Span:
    needle = json.dumps(key)
    offset = source.text.rfind(needle) if last else source.text.find(needle)
    if offset < 0:
        return Span(source, 1, 1, 1, 2)
    line = source.text.count("\n", 0, offset) + 1
    column = offset - (source.text.rfind("\n", 0, offset) + 1) + 1
    return Span(source, line, column, line, column + len(needle))
