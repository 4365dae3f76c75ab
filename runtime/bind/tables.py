"""Bind stage: model + sizes + parameters + data -> instance tables (`BoundModel`).

The factor graph is runtime data: each family becomes structure-of-arrays tables (flat
variable indices per slot, one float64 array per energy parameter) that the compiled
kernels loop over. Changing a size or a data file re-binds; it never recompiles.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import field

import numpy as np

from cfc_dsl import syntax as ast
from cfc_dsl.diagnostics import Span, did_you_mean
from cfc_dsl.frozen import frozen
from cfc_dsl.model import FactorFamily, Model
from cfc_dsl.runtime.bind.evaluate import Env, as_int, check_index, evaluate
from cfc_dsl.runtime.bind.inputs import (
    MAX_INSTANCES,
    DataInput,
    Setting,
    bind_error,
    bind_params,
    bind_sizes,
    classify_settings,
    load_data,
    observed_names,
    settable_names,
    shape_of,
)
from cfc_dsl.runtime.bind.schedules import BoundGate, BoundSchedule, bind_gate, bind_schedule

__all__ = ["BoundModel", "DataInput", "FamilyTable", "Setting", "VariableLayout", "bind",
           "expand_ranges", "settable_names"]


@frozen
class VariableLayout:
    name: str
    shape: tuple[int, ...]
    offset: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def element(self, flat: int) -> str:
        """'eta[3, 4]' for a flat index into the whole state vector."""
        local = flat - self.offset
        if not self.shape:
            return self.name
        idx = np.unravel_index(local, self.shape)
        return f"{self.name}[{', '.join(str(int(i)) for i in idx)}]"


@frozen
class FamilyTable:
    """One factor family's instances, in structure-of-arrays form."""

    family: FactorFamily
    weight: float
    slots: tuple[np.ndarray, ...]  # int64 flat variable indices, one array per slot
    params: tuple[np.ndarray, ...]  # float64, one array per energy parameter
    loops: Mapping[str, np.ndarray] = field(default_factory=dict)  # loop index values
    schedule: BoundSchedule | None = None  # continuation: the weight per stage (schedules.py)
    gate: BoundGate | None = None  # expansion: the family is optional, admitted if it pays

    @property
    def name(self) -> str:
        return self.family.name

    @property
    def energy(self) -> str:
        return self.family.energy

    @property
    def size(self) -> int:
        return int(self.slots[0].shape[0]) if self.slots else 0

    def describe(self, instance: int) -> str:
        if not self.loops:
            return f"factor '{self.name}'"
        at = ", ".join(f"{k} = {int(v[instance])}" for k, v in self.loops.items())
        return f"factor '{self.name}' at {at}"


@frozen
class BoundModel:
    model: Model
    sizes: Mapping[str, int]
    params: Mapping[str, float | np.ndarray]
    data: Mapping[str, np.ndarray]
    layout: tuple[VariableLayout, ...]
    lower: np.ndarray
    upper: np.ndarray
    x0: np.ndarray
    families: tuple[FamilyTable, ...]

    @property
    def n(self) -> int:
        return int(self.x0.shape[0])

    def variable(self, name: str) -> VariableLayout:
        return next(v for v in self.layout if v.name == name)

    def element(self, flat: int) -> str:
        for v in self.layout:
            if v.offset <= flat < v.offset + v.size:
                return v.element(flat)
        return f"x[{flat}]"

    def split(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The flat state as {variable: array of its shape}."""
        return {v.name: x[v.offset:v.offset + v.size].reshape(v.shape) for v in self.layout}

    def join(self, values: Mapping[str, np.ndarray | float], base: np.ndarray | None = None) -> np.ndarray:
        x = (self.x0 if base is None else base).copy()
        for name, value in values.items():
            v = self.variable(name)
            x[v.offset:v.offset + v.size] = np.broadcast_to(np.asarray(value, float), v.shape).ravel()
        return x


class MemoryBudget:
    """What binding and relaxing will hold in memory, charged before each large allocation,
    so that sizes too large for this machine are a message, not the kernel's OOM killer."""

    PER_VARIABLE = 128  # x0, bounds, origin, the solver's x, gradient and trial vectors, copies
    PER_COLUMN = 8  # one int64 or float64 per instance: loop indices, slots, parameters
    SCRATCH_COLUMNS = 3  # temporaries while an index or parameter column is evaluated

    def __init__(self, available: int | None = None):
        self.available = _available_memory() if available is None else available
        self.used = 0

    def charge(self, nbytes: int, what: str, span: Span | None) -> None:
        if self.available is None or self.used + nbytes <= self.available:
            self.used += nbytes
            return
        raise bind_error(f"{what} needs about {_gib(self.used + nbytes)} of memory in all, but "
                          f"{_gib(self.available)} is available", span,
                          "bind smaller sizes with --set, or run on a machine with more memory")


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2 ** 30:.1f} GiB"


def _available_memory() -> int | None:
    """MemAvailable from /proc/meminfo, within a cgroup memory limit; None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            available = next(int(line.split()[1]) * 1024 for line in f
                             if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(limit_file) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            available = min(available, int(text))
    return available


def bind(model: Model, settings: tuple[Setting, ...] = (), data: tuple[DataInput, ...] = (),
         point: Mapping[str, np.ndarray] | None = None) -> BoundModel:
    chosen = classify_settings(model, settings)
    budget = MemoryBudget()
    arrays = load_data(model, data, budget)  # data first: their shapes bind the sizes no one declares
    sizes = bind_sizes(model, arrays, chosen.sizes, observed_names(model, data))
    scalars, params = bind_params(model, sizes, arrays, chosen.params)
    weight_set = chosen.weights
    base = Env(scalars, arrays)

    for spec in model.variables:
        count = math.prod(shape_of(spec.shape, base, spec.span, f"variable '{spec.name}'"))
        budget.charge(count * MemoryBudget.PER_VARIABLE, f"variable '{spec.name}'", spec.span)
    layout, lower, upper, x0 = _variables(model, base)
    var_shapes = {v.name: v for v in layout}
    origin = _apply_inits(model, base, layout, x0)
    if point:
        for name, value in point.items():
            v = var_shapes.get(name)
            if v is None:
                raise bind_error(f"unknown variable '{name}' in the initial point", None,
                                  did_you_mean(name, set(var_shapes)))
            array = np.asarray(value, float)
            if array.shape != v.shape and array.size != 1:
                raise bind_error(f"'{name}' has shape {list(array.shape)} in the initial point "
                                  f"but the model's is {list(v.shape)}", None,
                                  "give one value per element (nested lists for several "
                                  "dimensions), or one number for all")
            x0[v.offset:v.offset + v.size] = array.ravel()
            origin[v.offset:v.offset + v.size] = _FROM_POINT
    outside = (x0 < lower) | (x0 > upper) | ~np.isfinite(x0)
    if np.any(outside):
        i = int(np.flatnonzero(outside)[0])
        v = next(v for v in layout if v.offset <= i < v.offset + v.size)
        var_spec = next(s for s in model.variables if s.name == v.name)
        bounds = f"[{lower[i]:g}, {upper[i]:g}]"
        message = (f"initial value {x0[i]:g} of {v.element(i)} is outside its bounds {bounds}"
                   if np.isfinite(x0[i]) else
                   f"initial value of {v.element(i)} is {x0[i]:g}, not a finite number")
        if origin[i] == _FROM_POINT:
            spans = getattr(point, "spans", {})  # cfc_dsl.runtime.bind.data.PointValues: where each key is
            raise bind_error(message + " (from the point file)" if v.name in spans else
                              message + " (from the initial point)", spans.get(v.name),
                              f"give '{v.name}' values within {bounds} in the point file"
                              if v.name in spans else
                              f"give '{v.name}' values within {bounds} in the initial point")
        if origin[i] >= 0:
            rule = model.inits[int(origin[i])]
            raise bind_error(message, rule.value.span,
                              f"change the init expression so that it stays within {bounds}")
        raise bind_error(message, var_spec.initial.span,
                          f"give '{v.name}' an initial value within {bounds}")

    tables = tuple(_family(f, base, var_shapes, weight_set, _param_names(model, f), budget)
                   for f in model.families)
    return BoundModel(model, sizes, params, arrays, layout, lower, upper, x0, tables)

_FROM_POINT = -2  # `origin` marker: the element's initial value came from the --init file


def _param_names(model: Model, family: FactorFamily) -> tuple[str, ...]:
    return next(e.param_names for e in model.energies if e.name == family.energy)


def _variables(model: Model, env: Env) -> tuple[tuple[VariableLayout, ...], np.ndarray, np.ndarray, np.ndarray]:
    layout: list[VariableLayout] = []
    lows, highs, inits = [], [], []
    offset = 0
    for spec in model.variables:
        shape = shape_of(spec.shape, env, spec.span, f"variable '{spec.name}'")
        v = VariableLayout(spec.name, shape, offset)
        offset += v.size
        layout.append(v)
        lo = float(np.asarray(evaluate(spec.lower, env)))
        hi = float(np.asarray(evaluate(spec.upper, env)))
        if not lo <= hi:
            first, last = spec.lower.span, spec.upper.span
            span = (Span(first.source, first.line, first.column, last.end_line, last.end_column)
                    if first is not spec.span else spec.span)
            raise bind_error(f"variable '{spec.name}' has lower bound {lo:g} above its upper "
                              f"bound {hi:g}", span, "write the bounds as 'in [low, high]'")
        lows.append(np.full(v.size, lo))
        highs.append(np.full(v.size, hi))
        inits.append(np.full(v.size, float(np.asarray(evaluate(spec.initial, env)))))
    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0)
    return tuple(layout), cat(lows), cat(highs), cat(inits)


def expand_ranges(ranges: ast.Ranges | None, base: Env, what: str,
                  budget: MemoryBudget | None = None, columns: int = 0) -> dict[str, np.ndarray]:
    """Loop index arrays for nested half-open ranges, filtered by the `if` condition.
    With a `budget`, the instances (loop indices plus `columns` more per instance) are
    charged to it before they are allocated."""
    if ranges is None:
        return {}
    loops: dict[str, np.ndarray] = {}
    count = 1
    for depth, r in enumerate(ranges.ranges, 1):
        if depth > 1 and count == 0:  # no instances: inner bounds are never evaluated
            loops[r.var] = np.zeros(0, np.int64)
            continue
        env = Env(base.scalars, base.arrays, loops)
        lo = np.broadcast_to(as_int(evaluate(r.start, env), r.span, "a range bound"), (count,))
        hi = np.broadcast_to(as_int(evaluate(r.stop, env), r.span, "a range bound"), (count,))
        lengths = np.maximum(hi - lo, 0)
        total = int(lengths.sum())
        if total > MAX_INSTANCES:
            raise bind_error(f"{what} would have {total:,} instances", ranges.span,
                              "check the sizes; more than 5e8 instances do not fit in memory")
        if budget is not None and depth == len(ranges.ranges):
            width = len(ranges.ranges) + columns + MemoryBudget.SCRATCH_COLUMNS
            budget.charge(total * width * MemoryBudget.PER_COLUMN, what, ranges.span)
        starts = np.cumsum(lengths) - lengths
        for name in loops:
            loops[name] = np.repeat(loops[name], lengths)
        loops[r.var] = np.repeat(lo, lengths) + (np.arange(total) - np.repeat(starts, lengths))
        count = total
    if ranges.condition is not None and count:  # a condition of no instances is not evaluated
        keep = np.broadcast_to(np.asarray(evaluate(ranges.condition, Env(base.scalars, base.arrays,
                                                                          loops)), bool), (count,))
        loops = {k: v[keep] for k, v in loops.items()}
    return {k: np.ascontiguousarray(v, dtype=np.int64) for k, v in loops.items()}


def _describe(what: str, loops: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    def where(i: int) -> str:
        if not loops or any(i >= len(v) for v in loops.values()):
            return f"in {what}"
        return f"in {what} at " + ", ".join(f"{k} = {int(v[i])}" for k, v in loops.items())
    return where


def _flat_index(ref: ast.Name | ast.Index, var: VariableLayout, env: Env, count: int) -> np.ndarray:
    if isinstance(ref, ast.Name):
        return np.full(count, var.offset, dtype=np.int64)
    parts = []
    for dim, sub in enumerate(ref.indices):
        values = np.broadcast_to(as_int(evaluate(sub, env), sub.span, "an index"), (count,))
        check_index(values, var.shape[dim], var.name, dim, sub.span, env)
        parts.append(values)
    flat = np.ravel_multi_index(tuple(parts), var.shape) if parts else np.zeros(count, np.int64)
    return np.ascontiguousarray(flat + var.offset, dtype=np.int64)


def _apply_inits(model: Model, base: Env, layout: tuple[VariableLayout, ...],
                 x0: np.ndarray) -> np.ndarray:
    """Apply the `init` rules to x0; returns, per element, the index of the rule that set it
    last (-1: the variable's declaration)."""
    by_name = {v.name: v for v in layout}
    origin = np.full(x0.shape, -1, dtype=np.int64)
    for number, rule in enumerate(model.inits):
        var = by_name[rule.var]
        loops = expand_ranges(rule.ranges, base, f"init {rule.var}")
        count = len(next(iter(loops.values()))) if loops else 1
        if count == 0:  # `init x[i in 0..N]` with N = 0: nothing to evaluate
            continue
        env = Env(base.scalars, base.arrays, loops, _describe(f"init {rule.var}", loops))
        values = np.broadcast_to(np.asarray(evaluate(rule.value, env), float), (count,))
        if rule.ranges is None:
            flat = np.full(1, var.offset)
        else:
            index = ast.Index(var.name, tuple(ast.Name(r.var, r.span) for r in rule.ranges.ranges),
                              rule.span, rule.span)
            flat = _flat_index(index, var, env, count)
        x0[flat] = values
        origin[flat] = number
    return origin


def _family(f: FactorFamily, base: Env, variables: dict[str, VariableLayout],
            weights: dict[str, Setting], param_names: tuple[str, ...],
            budget: MemoryBudget | None = None) -> FamilyTable:
    loops = expand_ranges(f.ranges, base, f"factor '{f.name}'", budget,
                          len(f.slot_args) + len(param_names))
    count = len(next(iter(loops.values()))) if loops else 1
    env = Env(base.scalars, base.arrays, loops, _describe(f"factor '{f.name}'", loops))
    if count == 0:  # a family with no instances: its index and parameter expressions
        # (x[i % N] with N = 0) are never evaluated, as the kernels never run them
        empty_slots = tuple(np.zeros(0, np.int64) for _ in f.slot_args)
        empty_params = tuple(np.zeros(0, np.float64) for _ in param_names)
        weight = _weight(f, base, weights)
        return FamilyTable(f, weight, empty_slots, empty_params, loops,
                           bind_schedule(f, base, weight), bind_gate(f, base))
    slots = tuple(_flat_index(ref, variables[ref.name], env, count) for ref in f.slot_args)
    params = []
    for name, expr in zip(param_names, f.param_args, strict=True):
        value = np.asarray(evaluate(expr, env), dtype=np.float64)
        if not np.all(np.isfinite(value)):
            wide = np.broadcast_to(value, (count,))
            i = int(np.flatnonzero(~np.isfinite(wide))[0])
            raise bind_error(f"parameter '{name}' of {env.where(i)[3:]} is {wide[i]:g}, not a "
                              "finite number", expr.span,
                              "make the expression finite for every instance, e.g. avoid log(0) "
                              "and division by zero")
        params.append(np.ascontiguousarray(np.broadcast_to(value, (count,)), dtype=np.float64))
    weight = _weight(f, base, weights)
    return FamilyTable(f, weight, slots, tuple(params), loops, bind_schedule(f, base, weight),
                       bind_gate(f, base))


def _weight(f: FactorFamily, base: Env, weights: dict[str, Setting]) -> float:
    if f.name in weights:
        return weights[f.name].value
    weight = float(np.asarray(evaluate(f.weight, Env(base.scalars, base.arrays))))
    if not math.isfinite(weight):
        raise bind_error(f"the weight of factor '{f.name}' is {weight:g}, not a finite "
                          "number", f.weight.span, "give the family a finite weight")
    return weight
