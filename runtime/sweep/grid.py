"""What a sweep runs over and records: grid axes, seeds, and the observed statistics.

An axis is `NAME=lo:hi:num` (numpy.linspace) or `NAME=v1,v2,...`; a seed list is `K`
(seeds 0..K-1) or `s1,s2,...`; an observation is `VAR:STAT` (e.g. `eta:mean`). Bad text is
a located error with a caret under the offending part of the command-line flag.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from cfc_dsl.diagnostics import CfcError, ErrorKind, Source, Span, did_you_mean
from cfc_dsl.model import Model
from cfc_dsl.runtime.bind.inputs import settable_names

STATISTICS = {"mean": np.mean, "min": np.min, "max": np.max, "sum": np.sum, "std": np.std,
              "median": np.median, "norm": np.linalg.norm,
              "first": lambda v: v.ravel()[0], "last": lambda v: v.ravel()[-1]}


def _span(text: str, start: int, end: int) -> Span:
    return Span(Source("<command line>", text), 1, start + 1, 1, max(end, start + 1) + 1)


def _error(message: str, text: str, start: int, end: int, hint: str) -> CfcError:
    return CfcError(ErrorKind.ARGUMENT, message, _span(text, start, end), hint)


@dataclass(frozen=True)
class Axis:
    """One swept setting (a size, param or weight.FAMILY) and its values, in order."""

    name: str
    values: tuple[float, ...]
    span: Span | None = None

    @classmethod
    def parse(cls, item: str, flag: str = "--grid") -> Axis:
        text = f"{flag} {item}"
        at = len(flag) + 1
        name, sep, rest = item.partition("=")
        if not sep or not name.strip() or not rest.strip():
            raise _error(f"'{flag} {item}' is not NAME=lo:hi:num or NAME=v1,v2,...", text, at,
                         len(text), f"write e.g. {flag} a=-1:1:21 or {flag} N=64,256")
        start = at + len(name) + 1
        span = _span(text, at, at + len(name))
        if ":" in rest:
            return cls(name.strip(), _linspace(rest, text, start, flag), span)
        values, pos = [], start
        for part in rest.split(","):
            values.append(_number(part, text, pos, f"{flag} {name}=64,256"))
            pos += len(part) + 1
        return cls(name.strip(), tuple(values), span)

    @classmethod
    def of(cls, name: str, value: str | float | Iterable[float]) -> Axis:
        """An axis from Python: `"-1:1:21"`, `"64,256"`, a number or a sequence of numbers."""
        if isinstance(value, str):
            return cls.parse(f"{name}={value}", "grid")
        values = np.atleast_1d(np.asarray(value, dtype=np.float64))
        if values.ndim != 1 or not values.size or not np.all(np.isfinite(values)):
            raise CfcError(ErrorKind.ARGUMENT, f"grid axis '{name}' needs finite numbers", None,
                           "give e.g. numpy.linspace(-1, 1, 21), [64, 256] or '-1:1:21'")
        return cls(name, tuple(float(v) for v in values))


def _number(part: str, text: str, pos: int, example: str) -> float:
    try:
        value = float(part)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value):
        raise _error(f"'{part.strip()}' is not a finite number", text, pos, pos + len(part),
                     f"write numbers, e.g. {example}")
    return value


def _linspace(rest: str, text: str, start: int, flag: str) -> tuple[float, ...]:
    parts = rest.split(":")
    if len(parts) != 3:
        raise _error(f"'{rest}' is not lo:hi:num", text, start, start + len(rest),
                     f"a range has three parts, e.g. {flag} a=-1:1:21 (21 values from -1 to 1)")
    lo = _number(parts[0], text, start, "-1:1:21")
    hi = _number(parts[1], text, start + len(parts[0]) + 1, "-1:1:21")
    pos = start + len(parts[0]) + len(parts[1]) + 2
    try:
        num = int(parts[2])
    except ValueError:
        num = 0
    if num < 1:
        raise _error(f"'{parts[2]}' is not a count of values (an integer >= 1)", text, pos,
                     pos + len(parts[2]), "the third part counts the values, e.g. -1:1:21")
    return tuple(float(v) for v in np.linspace(lo, hi, num))


def parse_seeds(text: str | int | Sequence[int], flag: str = "--seeds") -> tuple[int, ...]:
    """`K` -> seeds 0..K-1; `s1,s2,...` (or a sequence) -> those seeds."""
    if isinstance(text, int):
        text = str(text)
    if not isinstance(text, str):
        seeds = tuple(int(s) for s in text)
        if not seeds or min(seeds) < 0:
            raise CfcError(ErrorKind.ARGUMENT, f"seeds must be integers >= 0, got {seeds}", None,
                           "give e.g. seeds=10 (0..9) or seeds=[3, 7, 11]")
        return seeds
    line = f"{flag} {text}"
    parts, pos, out = text.split(","), len(flag) + 1, []
    for part in parts:
        if not part.strip().isdigit():
            raise _error(f"'{part}' is not a seed (an integer >= 0)", line, pos, pos + len(part),
                         f"write {flag} 10 (seeds 0..9) or {flag} 3,7,11")
        out.append(int(part))
        pos += len(part) + 1
    if len(parts) == 1:
        if out[0] < 1:
            raise _error("the number of seeds must be at least 1", line, len(flag) + 1,
                         len(line), f"write e.g. {flag} 10 (seeds 0..9)")
        return tuple(range(out[0]))
    return tuple(out)


@dataclass(frozen=True)
class Observation:
    """A statistic of one relaxed variable, recorded in the column `VAR:STAT`."""

    variable: str
    statistic: str
    span: Span | None = None

    @property
    def column(self) -> str:
        return f"{self.variable}:{self.statistic}"

    @classmethod
    def parse(cls, item: str, flag: str = "--observe") -> Observation:
        text = f"{flag} {item}"
        at = len(flag) + 1
        var, sep, stat = item.partition(":")
        if not sep or not var or not stat:
            raise _error(f"'{item}' is not VAR:STAT", text, at, len(text),
                         f"write e.g. {flag} eta:mean ({', '.join(STATISTICS)})")
        if stat not in STATISTICS:
            pos = at + len(var) + 1
            raise _error(f"unknown statistic '{stat}'", text, pos, pos + len(stat),
                         did_you_mean(stat, set(STATISTICS)))
        return cls(var, stat, _span(text, at, at + len(var)))


@dataclass(frozen=True)
class Point:
    """One grid point and seed; `key` identifies it in an output file (for resume)."""

    values: tuple[tuple[str, float], ...]
    seed: int

    @property
    def key(self) -> tuple[float | int, ...]:
        return (*(v for _, v in self.values), self.seed)


def points(axes: Sequence[Axis], seeds: Sequence[int]) -> list[Point]:
    """The grid (the first axis varies slowest) times the seeds, in a fixed order."""
    names = [a.name for a in axes]
    return [Point(tuple(zip(names, combo, strict=True)), seed)
            for combo in itertools.product(*(a.values for a in axes)) for seed in seeds]


def check_names(model: Model, axes: Sequence[Axis], observe: Sequence[Observation],
                fixed: Iterable[str] = ()) -> None:
    """Every axis names something settable, once; every observation a declared variable."""
    settable = settable_names(model)
    seen = set(fixed)
    for axis in axes:
        if axis.name not in settable:
            raise CfcError(ErrorKind.ARGUMENT, f"'{axis.name}' cannot be swept", axis.span,
                           did_you_mean(axis.name, set(settable))
                           + " (sizes, params and weight.FAMILY can be swept)")
        if axis.name in seen:
            raise CfcError(ErrorKind.ARGUMENT, f"'{axis.name}' is set twice", axis.span,
                           "give each name one --grid (or --set), not both")
        seen.add(axis.name)
    variables = {v.name for v in model.variables}
    for obs in observe:
        if obs.variable not in variables:
            raise CfcError(ErrorKind.ARGUMENT, f"unknown variable '{obs.variable}' to observe",
                           obs.span, did_you_mean(obs.variable, variables))
