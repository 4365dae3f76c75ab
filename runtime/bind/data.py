"""Runtime inputs from files: data arrays (.npy, .csv); point files are in `points`.

Every failure is a `CfcError` that points at the declaration it concerns and says what to
do next. Only regular files are read, a .npy header is checked against the file's size and
the memory budget before anything is allocated, and nothing here writes to the user's files.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np

from cfc_dsl.diagnostics import CfcError, ErrorKind, Span, plural
from cfc_dsl.frontend import open_input
from cfc_dsl.model import DataSpec, DType
from cfc_dsl.runtime.bind.points import PointValues, key_span, load_point

__all__ = ["PointValues", "key_span", "load_array", "load_point"]  # point files moved to points


class Budget(Protocol):
    """What `load_array` charges a large array to (bind's MemoryBudget)."""

    def charge(self, nbytes: int, what: str, span: Span | None) -> None: ...


def load_array(path: Path, spec: DataSpec, budget: Budget | None = None) -> np.ndarray:
    """Load `path` for the data declaration `spec`; dtype is checked, shape is not (yet)."""
    if not path.exists() and not path.is_symlink():
        raise CfcError(ErrorKind.DATA, f"data file '{path}' for '{spec.name}' does not exist",
                       spec.span, f"pass an existing .npy or .csv file: --data {spec.name}=PATH")
    suffix = path.suffix.lower()
    hint = f"pass an existing .npy or .csv file: --data {spec.name}=PATH"
    if suffix not in (".npy", ".csv"):
        raise CfcError(ErrorKind.DATA, f"cannot read '{path}': unknown file type '{suffix}'",
                       spec.span, "data files are .npy (numpy.save) or .csv (comma-separated)")
    try:
        with open_input(path, "data file", limit=None, hint=hint,
                        span=spec.span, kind=ErrorKind.DATA) as (file, size):
            if suffix == ".npy":
                _check_npy_header(file, size, path, spec, budget)
                array = np.load(file, allow_pickle=False)
            else:
                array = _load_csv(file.read())
    except CfcError:
        raise
    except (OSError, ValueError, EOFError) as exc:
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


def _check_npy_header(file: BinaryIO, size: int, path: Path, spec: DataSpec,
                      budget: Budget | None) -> None:
    """The header's shape must fit the file and the memory budget: np.load allocates the
    whole array before it reads a byte of it. Leaves `file` at its start."""
    if file.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
        # np.load takes a file that is not .npy for a pickle and says so; say what it is
        raise CfcError(ErrorKind.DATA, f"'{path}' is not a .npy file (it does not start with "
                       "the NumPy header)", spec.span,
                       "write it with numpy.save, or name a comma-separated file '.csv'")
    file.seek(0)
    fmt = np.lib.format
    version = fmt.read_magic(file)
    if version == (1, 0):
        shape, _, dtype = fmt.read_array_header_1_0(file)
    elif version == (2, 0):
        shape, _, dtype = fmt.read_array_header_2_0(file)
    else:
        shape, _, dtype = fmt._read_array_header(file, version)  # 3.0: no public reader
    elements = math.prod(shape)
    nbytes = elements * dtype.itemsize
    held = size - file.tell()
    if not dtype.hasobject and nbytes > held:
        raise CfcError(ErrorKind.DATA, f"'{path}' is truncated or damaged: its header says shape "
                       f"{list(shape)} ({nbytes:,} bytes of {dtype}) but the file holds "
                       f"{plural(max(held, 0), 'byte')} after it", spec.span,
                       "write the array again with numpy.save")
    if budget is not None:  # the array as loaded, and its float64/int64 copy
        budget.charge(elements * (dtype.itemsize + 8), f"data '{spec.name}' ({list(shape)})",
                      spec.span)
    file.seek(0)


def _load_csv(data: bytes) -> np.ndarray:
    try:
        text = data.decode("utf-8-sig")  # -sig: a BOM is not part of the first cell
    except UnicodeDecodeError as exc:
        raise ValueError(f"it is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                         f"{exc.start}); is it a binary file?") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # as Path.read_text did
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
