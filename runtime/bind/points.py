"""Point files (`--at`, `--init`, `graph --solution`) and the bounded JSON reader they share
with certificates.

A point file is `{"var": number | nested list}`, or what `cfc run --out` writes (the values
under its "x"), so a result goes back in as it is. A plain number for an array variable
fills every element. Every failure is a `CfcError` at the key or byte in the file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from cfc_dsl.diagnostics import CfcError, ErrorKind, Source, Span, did_you_mean
from cfc_dsl.frontend import read_input

MAX_JSON_DEPTH = 64  # a point nests one level per dimension; certificates about six
MAX_NUMBER_CHARS = 200  # float64 needs 25; 200 digits stay below 1.8e308
POINT_BYTES_PER_ELEMENT = 64  # one number on its own indented line, as `run --out` writes it
POINT_SLACK_BYTES = 16 * 2 ** 20  # the rest of a `run --out` file: families, provenance, L

_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")
_LONG_NUMBER = re.compile(rf"[-+0-9.eE]{{{MAX_NUMBER_CHARS + 1},}}")
POINT_HINT = "pass a JSON file like {\"eta\": [0.1, 0.2]}, or what 'cfc run --out' wrote"


def read_json(path: Path, what: str, hint: str, limit: int) -> tuple[object, Source, list[str]]:
    """Parse the JSON file `path` within `limit` bytes and MAX_JSON_DEPTH levels; returns the
    value, its source (for spans) and the keys given twice in one object."""
    data = read_input(path, what, limit=limit, hint=hint)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CfcError(ErrorKind.ARGUMENT, f"{what} '{path}' is not UTF-8 text (byte "
                       f"{exc.object[exc.start]:#04x} at offset {exc.start})", None, hint) from None
    source = Source(str(path), text)
    _check_shape_of_text(text, source, what)
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        seen: dict[str, object] = {}
        for key, value in items:
            if key in seen:
                duplicates.append(key)
            seen[key] = value
        return seen

    try:
        return json.loads(text, object_pairs_hook=pairs), source, duplicates
    except json.JSONDecodeError as exc:
        span = Span(source, exc.lineno, exc.colno, exc.lineno, exc.colno + 1)
        raise CfcError(ErrorKind.ARGUMENT, f"invalid JSON: {exc.msg}", span, hint) from None
    except RecursionError:  # the depth scan missed a nesting; never a traceback
        raise CfcError(ErrorKind.ARGUMENT, f"{what} nests too deeply", None, hint) from None


def _check_shape_of_text(text: str, source: Source, what: str) -> None:
    """Depth and number-length limits, checked on the text before the parser recurses or
    converts: brackets inside strings are blanked out first."""
    bare = _STRING.sub(lambda m: '"' + " " * (len(m.group()) - 2) + '"', text)
    depth = 0
    for m in _BRACKET.finditer(bare):
        depth += 1 if m.group() in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            raise CfcError(ErrorKind.ARGUMENT, f"the {what} nests more than {MAX_JSON_DEPTH} "
                           "levels deep", _span_at(source, m.start(), 1),
                           "a point nests one list per dimension of a variable")
    long = _LONG_NUMBER.search(bare)
    if long:
        raise CfcError(ErrorKind.ARGUMENT, f"a number of {len(long.group()):,} characters in the "
                       f"{what}", _span_at(source, long.start(), 8),
                       f"write numbers as float64 values (at most {MAX_NUMBER_CHARS} characters, "
                       "e.g. 1.5e300)")


SHOWN_AFTER = 40  # characters of a long line shown after the marked ones


def _span_at(source: Source, offset: int, width: int) -> Span:
    """A span of `width` characters at `offset`; on a long line (a point file written on one
    line) the excerpt it shows stops shortly after the mark."""
    start = source.text.rfind("\n", 0, offset) + 1
    line = source.text.count("\n", 0, offset) + 1
    column = offset - start + 1
    stop = source.text.find("\n", offset)
    stop = len(source.text) if stop < 0 else stop
    if stop - (offset + width) > SHOWN_AFTER + 3:
        shown = source.text[start:offset + width + SHOWN_AFTER] + " ..."
        source = Source(source.name, "\n" * (line - 1) + shown)
    return Span(source, line, column, line, column + width)


def point_limit(variables: dict[str, tuple[int, ...]]) -> int:
    """The most bytes a point file for these variables can reasonably need."""
    elements = sum(int(np.prod(shape, dtype=np.int64)) for shape in variables.values())
    return POINT_SLACK_BYTES + POINT_BYTES_PER_ELEMENT * elements


def load_point(path: Path, variables: dict[str, tuple[int, ...]],
               what: str = "point file") -> PointValues:
    """Read a point file (or a `run --out` result) for `variables` (name -> shape); each
    value comes back with the variable's full shape."""
    raw, source, duplicates = read_json(path, what, POINT_HINT, point_limit(variables))
    if not isinstance(raw, dict):
        raise CfcError(ErrorKind.ARGUMENT, f"a {what} must be a JSON object",
                       Span(source, 1, 1, 1, 2), "write {\"eta\": [0.1, 0.2], \"gate\": 0.0}")
    start = 0
    if isinstance(raw.get("x"), dict):  # `cfc run --out`: the values are under "x"
        raw = raw["x"]
        found = re.search(r'"x"\s*:\s*\{', source.text)
        start = found.start() if found else 0
    assert isinstance(raw, dict)
    if duplicates and duplicates[0] in raw:
        name = duplicates[0]
        raise CfcError(ErrorKind.ARGUMENT, f"'{name}' is given twice in the {what}",
                       key_span(source, name, last=True), "keep one entry per variable")
    out = PointValues()
    for name, value in raw.items():
        span = key_span(source, name, start=start)
        if name not in variables:
            raise CfcError(ErrorKind.ARGUMENT, f"unknown variable '{name}' in {what}", span,
                           did_you_mean(name, set(variables)))
        try:
            if _has_bool(value):
                raise TypeError("true/false")
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise CfcError(ErrorKind.ARGUMENT, f"'{name}' must be a number or a nested list of "
                           "numbers", span, "check for strings, true/false or ragged lists") from None
        shape = variables[name]
        if array.ndim == 0:  # one number for every element, as for declarations
            array = np.full(shape, float(array))
        if array.shape != shape:
            raise CfcError(ErrorKind.ARGUMENT, f"'{name}' has shape {list(array.shape)} in the "
                           f"{what} but the model's is {list(shape)}", span,
                           "give one value per element (nested lists for several dimensions), "
                           "or one number for all")
        if not np.all(np.isfinite(array)):
            raise CfcError(ErrorKind.ARGUMENT, f"'{name}' has a non-finite value", span,
                           f"{what}s hold finite numbers only")
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


def key_span(source: Source, key: str, last: bool = False, start: int = 0) -> Span:
    """Where `"key"` first (or last) appears in the file, from offset `start` on."""
    needle = json.dumps(key)
    offset = source.text.rfind(needle) if last else source.text.find(needle, start)
    if offset < 0:
        return Span(source, 1, 1, 1, 2)
    return _span_at(source, offset, len(needle))
