"""Bind stage: model + sizes + parameters + data -> instance tables (`BoundModel`).

The factor graph is runtime data: each family becomes structure-of-arrays tables (flat
variable indices per slot, one float64 array per energy parameter) that the compiled
kernels loop over. Changing a size or a data file re-binds; it never recompiles.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cfc_dsl import syntax as ast
from cfc_dsl.diagnostics import CfcError, ErrorKind, Span, did_you_mean, plural
from cfc_dsl.model import DataSpec, FactorFamily, Model
from runtime.data import load_array
from runtime.evaluate import Env, as_int, check_index, evaluate

MAX_INSTANCES = 500_000_000


@dataclass(frozen=True)
class Setting:
    """A `--set NAME=VALUE` (or a keyword of `bind`); `span` points into the command line."""

    name: str
    value: float
    span: Span | None = None


@dataclass(frozen=True)
class DataInput:
    name: str
    value: Path | np.ndarray
    span: Span | None = None


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class FamilyTable:
    """One factor family's instances, in structure-of-arrays form."""

    family: FactorFamily
    weight: float
    slots: tuple[np.ndarray, ...]  # int64 flat variable indices, one array per slot
    params: tuple[np.ndarray, ...]  # float64, one array per energy parameter
    loops: Mapping[str, np.ndarray] = field(default_factory=dict)  # loop index values

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


@dataclass(frozen=True)
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


def _bind_error(message: str, span: Span | None, hint: str) -> CfcError:
    return CfcError(ErrorKind.BIND, message, span, hint)


def settable_names(model: Model) -> list[str]:
    return ([s.name for s in model.sizes if s.default is not None] + [p.name for p in model.params]
            + [f"weight.{f.name}" for f in model.families])


def bind(model: Model, settings: tuple[Setting, ...] = (), data: tuple[DataInput, ...] = (),
         point: Mapping[str, np.ndarray] | None = None) -> BoundModel:
    sizes_decl = {s.name: s for s in model.sizes}
    params_decl = {p.name: p for p in model.params}
    families = {f.name: f for f in model.families}
    size_set: dict[str, Setting] = {}
    param_set: dict[str, Setting] = {}
    weight_set: dict[str, Setting] = {}
    for s in settings:
        if not math.isfinite(s.value):
            raise _bind_error(f"'{s.name}' is set to {s.value:g}, which is not a finite number",
                              s.span, f"give a finite number, e.g. --set {s.name}=1")
        if s.name.startswith("weight.") and s.name[7:] in families:
            weight_set[s.name[7:]] = s
        elif s.name in sizes_decl and sizes_decl[s.name].default is not None:
            size_set[s.name] = s
        elif s.name in params_decl:
            param_set[s.name] = s
        elif s.name in sizes_decl:
            raise _bind_error(f"size '{s.name}' is set by the shape of its data file", s.span,
                              "change the data file instead of setting it")
        else:
            raise _bind_error(f"unknown name '{s.name}' in --set", s.span,
                              did_you_mean(s.name, settable_names(model))
                              + " (sizes, params and weight.FAMILY can be set)")

    # data first: their shapes bind the sizes that no declaration gives
    data_specs = {d.name: d for d in model.data}
    arrays: dict[str, np.ndarray] = {}
    for item in data:
        spec = data_specs.get(item.name)
        if spec is None:
            raise _bind_error(f"unknown data name '{item.name}' in --data", item.span,
                              did_you_mean(item.name, set(data_specs)))
        if isinstance(item.value, np.ndarray):
            arrays[item.name] = item.value
        else:
            arrays[item.name] = load_array(Path(item.value), spec)
    for spec in model.data:
        if spec.name not in arrays:
            raise CfcError(ErrorKind.DATA, f"no data given for '{spec.name}'", spec.span,
                           f"pass it with --data {spec.name}=PATH.npy (or .csv)")
        got = arrays[spec.name].shape
        if len(got) != len(spec.shape):
            raise CfcError(ErrorKind.DATA,
                           f"data '{spec.name}' has {plural(len(got), 'dimension')} (shape "
                           f"{list(got)}) but its declaration '{_declared(spec)}' has "
                           f"{len(spec.shape)}", spec.span,
                           f"give an array with {plural(len(spec.shape), 'dimension')}, or "
                           "change the declaration")

    sizes: dict[str, int] = {}
    _bind_data_sizes(model, arrays, sizes)
    env = Env(scalars={}, arrays={})
    for spec in model.sizes:
        if spec.default is None:
            continue
        if spec.name in size_set:
            value = size_set[spec.name].value
            if value != int(value) or value < 0:
                raise _bind_error(f"size '{spec.name}' must be a whole number >= 0, got {value:g}",
                                  size_set[spec.name].span, f"for example --set {spec.name}=100")
            sizes[spec.name] = int(value)
        else:
            sizes[spec.name] = int(as_int(evaluate(spec.default, _env(sizes)), spec.span, "a size"))
            if sizes[spec.name] < 0:
                raise _bind_error(f"size '{spec.name}' is negative ({sizes[spec.name]})",
                                  spec.default.span, "sizes count elements and must be >= 0")
        env.scalars[spec.name] = sizes[spec.name]
        _bind_data_sizes(model, arrays, sizes)
    _bind_data_sizes(model, arrays, sizes)
    settable = set(settable_names(model))
    for spec in model.data:
        want = _shape(spec.shape, _env(sizes), spec.span, f"data '{spec.name}'")
        got = arrays[spec.name].shape
        if got != want:
            dim = next(i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w)
            expr = spec.shape[dim]
            hint = f"give an array of shape {list(want)}"
            if isinstance(expr, ast.Name) and expr.name in settable:
                hint += f", or run with --set {expr.name}={got[dim]}"
            raise CfcError(ErrorKind.DATA,
                           f"data '{spec.name}' has shape {list(got)} but its declaration "
                           f"'{_declared(spec)}' needs {list(want)}", spec.span, hint)
    scalars: dict[str, float | int] = dict(sizes)
    params: dict[str, float | np.ndarray] = {}
    for spec in model.params:
        if spec.name in param_set:
            value: float | np.ndarray = float(param_set[spec.name].value)
        else:
            value = float(np.asarray(evaluate(spec.default, Env(dict(scalars), arrays))))
        if spec.shape:
            shape = _shape(spec.shape, _env(sizes), spec.span, f"parameter '{spec.name}'")
            arr = np.full(shape, float(value))
            arrays[spec.name] = arr
            params[spec.name] = arr
        else:
            scalars[spec.name] = float(value)
            params[spec.name] = float(value)
    base = Env(scalars, arrays)

    layout, lower, upper, x0 = _variables(model, base)
    var_shapes = {v.name: v for v in layout}
    origin = _apply_inits(model, base, layout, x0)
    if point:
        for name, value in point.items():
            v = var_shapes.get(name)
            if v is None:
                raise _bind_error(f"unknown variable '{name}' in the initial point", None,
                                  did_you_mean(name, set(var_shapes)))
            array = np.asarray(value, float)
            if array.shape != v.shape and array.size != 1:
                raise _bind_error(f"'{name}' has shape {list(array.shape)} in the initial point "
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
            raise _bind_error(message + " (from the initial point)", None,
                              f"give '{v.name}' values within {bounds} in the initial point (--init)")
        if origin[i] >= 0:
            rule = model.inits[int(origin[i])]
            raise _bind_error(message, rule.value.span,
                              f"change the init expression so that it stays within {bounds}")
        raise _bind_error(message, var_spec.initial.span,
                          f"give '{v.name}' an initial value within {bounds}")

    tables = tuple(_family(f, base, var_shapes, weight_set, _param_names(model, f))
                   for f in model.families)
    return BoundModel(model, sizes, params, arrays, layout, lower, upper, x0, tables)


def _env(sizes: dict[str, int]) -> Env:
    return Env(dict(sizes), {})


_FROM_POINT = -2  # `origin` marker: the element's initial value came from the --init file


def _declared(spec: DataSpec) -> str:
    """'edges[M, 2]', the declared shape as written in the model."""
    dims = ", ".join(_source_text(d) for d in spec.shape)
    return f"{spec.name}[{dims}]" if spec.shape else spec.name


def _source_text(expr: ast.Expr) -> str:
    span = expr.span
    if span.line != span.end_line:
        return "..."
    return span.source.line(span.line)[span.column - 1:span.end_column - 1]


def _shape(dims: tuple[ast.Expr, ...], env: Env, span: Span, what: str) -> tuple[int, ...]:
    """Evaluate a declared shape; every dimension is >= 0 and the whole fits in memory."""
    shape = tuple(int(as_int(evaluate(d, env), d.span, "a dimension")) for d in dims)
    for d, n in zip(dims, shape, strict=True):
        if n < 0:
            raise _bind_error(f"a dimension of {what} is negative ({n})", d.span,
                              "check the sizes used in this dimension")
    if math.prod(shape) > MAX_INSTANCES:
        raise _bind_error(f"{what} would have {math.prod(shape):,} elements", span,
                          "check the sizes; more than 5e8 elements do not fit in memory")
    return shape


def _param_names(model: Model, family: FactorFamily) -> tuple[str, ...]:
    return next(e.param_names for e in model.energies if e.name == family.energy)


def _bind_data_sizes(model: Model, arrays: dict[str, np.ndarray], sizes: dict[str, int]) -> None:
    declared = {s.name for s in model.sizes if s.default is not None}
    for spec in model.data:
        for dim, expr in enumerate(spec.shape):
            if isinstance(expr, ast.Name) and expr.name not in declared and expr.name not in sizes:
                if dim < arrays[spec.name].ndim:
                    sizes[expr.name] = int(arrays[spec.name].shape[dim])


def _variables(model: Model, env: Env) -> tuple[tuple[VariableLayout, ...], np.ndarray, np.ndarray, np.ndarray]:
    layout: list[VariableLayout] = []
    lows, highs, inits = [], [], []
    offset = 0
    for spec in model.variables:
        shape = _shape(spec.shape, env, spec.span, f"variable '{spec.name}'")
        v = VariableLayout(spec.name, shape, offset)
        offset += v.size
        layout.append(v)
        lo = float(np.asarray(evaluate(spec.lower, env)))
        hi = float(np.asarray(evaluate(spec.upper, env)))
        if not lo <= hi:
            first, last = spec.lower.span, spec.upper.span
            span = (Span(first.source, first.line, first.column, last.end_line, last.end_column)
                    if first is not spec.span else spec.span)
            raise _bind_error(f"variable '{spec.name}' has lower bound {lo:g} above its upper "
                              f"bound {hi:g}", span, "write the bounds as 'in [low, high]'")
        lows.append(np.full(v.size, lo))
        highs.append(np.full(v.size, hi))
        inits.append(np.full(v.size, float(np.asarray(evaluate(spec.initial, env)))))
    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0)
    return tuple(layout), cat(lows), cat(highs), cat(inits)


def expand_ranges(ranges: ast.Ranges | None, base: Env, what: str) -> dict[str, np.ndarray]:
    """Loop index arrays for nested half-open ranges, filtered by the `if` condition."""
    if ranges is None:
        return {}
    loops: dict[str, np.ndarray] = {}
    count = 1
    for r in ranges.ranges:
        env = Env(base.scalars, base.arrays, loops)
        lo = np.broadcast_to(as_int(evaluate(r.start, env), r.span, "a range bound"), (count,))
        hi = np.broadcast_to(as_int(evaluate(r.stop, env), r.span, "a range bound"), (count,))
        lengths = np.maximum(hi - lo, 0)
        total = int(lengths.sum())
        if total > MAX_INSTANCES:
            raise _bind_error(f"{what} would have {total:,} instances", ranges.span,
                              "check the sizes; more than 5e8 instances do not fit in memory")
        starts = np.cumsum(lengths) - lengths
        for name in loops:
            loops[name] = np.repeat(loops[name], lengths)
        loops[r.var] = np.repeat(lo, lengths) + (np.arange(total) - np.repeat(starts, lengths))
        count = total
    if ranges.condition is not None:
        keep = np.broadcast_to(np.asarray(evaluate(ranges.condition, Env(base.scalars, base.arrays,
                                                                          loops)), bool), (count,))
        loops = {k: v[keep] for k, v in loops.items()}
    return {k: np.ascontiguousarray(v, dtype=np.int64) for k, v in loops.items()}


def _describe(what: str, loops: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    def where(i: int) -> str:
        if not loops:
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
            weights: dict[str, Setting], param_names: tuple[str, ...]) -> FamilyTable:
    loops = expand_ranges(f.ranges, base, f"factor '{f.name}'")
    count = len(next(iter(loops.values()))) if loops else 1
    env = Env(base.scalars, base.arrays, loops, _describe(f"factor '{f.name}'", loops))
    slots = tuple(_flat_index(ref, variables[ref.name], env, count) for ref in f.slot_args)
    params = []
    for name, expr in zip(param_names, f.param_args, strict=True):
        value = np.asarray(evaluate(expr, env), dtype=np.float64)
        if not np.all(np.isfinite(value)):
            wide = np.broadcast_to(value, (count,))
            i = int(np.flatnonzero(~np.isfinite(wide))[0])
            raise _bind_error(f"parameter '{name}' of {env.where(i)[3:]} is {wide[i]:g}, not a "
                              "finite number", expr.span,
                              "make the expression finite for every instance, e.g. avoid log(0) "
                              "and division by zero")
        params.append(np.ascontiguousarray(np.broadcast_to(value, (count,)), dtype=np.float64))
    if f.name in weights:
        weight = weights[f.name].value
    else:
        weight = float(np.asarray(evaluate(f.weight, Env(base.scalars, base.arrays))))
        if not math.isfinite(weight):
            raise _bind_error(f"the weight of factor '{f.name}' is {weight:g}, not a finite "
                              "number", f.weight.span, "give the family a finite weight")
    return FamilyTable(f, weight, slots, tuple(params), loops)
