"""Bind inputs: `--set` values, data arrays, sizes and parameters -> an environment.

The first half of binding. Settings are sorted into sizes, parameters and weights; data
files are loaded, or computed by the observable a declaration names, and their shapes checked
against the declarations (binding the sizes only data gives); sizes and parameters are evaluated in declaration order. Every failure points
at the declaration or the command-line argument it concerns.
"""

from __future__ import annotations

import math
from dataclasses import field
from pathlib import Path

import numpy as np

from cfc_dsl import syntax as ast
from cfc_dsl.diagnostics import CfcError, ErrorKind, Span, did_you_mean, plural
from cfc_dsl.frozen import frozen
from cfc_dsl.model import DataSpec, DType, Model
from cfc_dsl.runtime.bind.data import Budget, load_array
from cfc_dsl.runtime.bind.evaluate import Env, as_int, evaluate

MAX_INSTANCES = 500_000_000


@frozen
class Setting:
    """A `--set NAME=VALUE` (or a keyword of `bind`); `span` points into the command line."""

    name: str
    value: float
    span: Span | None = None


@frozen
class DataInput:
    name: str
    value: Path | np.ndarray
    span: Span | None = None


@frozen
class Settings:
    """`--set` values sorted by what they set."""

    sizes: dict[str, Setting] = field(default_factory=dict)
    params: dict[str, Setting] = field(default_factory=dict)
    weights: dict[str, Setting] = field(default_factory=dict)


def bind_error(message: str, span: Span | None, hint: str) -> CfcError:
    return CfcError(ErrorKind.BIND, message, span, hint)


def settable_names(model: Model) -> list[str]:
    return ([s.name for s in model.sizes if s.default is not None] + [p.name for p in model.params]
            + [f"weight.{f.name}" for f in model.families])


def classify_settings(model: Model, settings: tuple[Setting, ...]) -> Settings:
    sizes_decl = {s.name: s for s in model.sizes}
    params_decl = {p.name: p for p in model.params}
    families = {f.name: f for f in model.families}
    out = Settings()
    size_set, param_set, weight_set = out.sizes, out.params, out.weights
    for s in settings:
        if not math.isfinite(s.value):
            raise bind_error(f"'{s.name}' is set to {s.value:g}, which is not a finite number",
                              s.span, f"give a finite number, e.g. --set {s.name}=1")
        if s.name.startswith("weight.") and s.name[7:] in families:
            weight_set[s.name[7:]] = s
        elif s.name in sizes_decl and sizes_decl[s.name].default is not None:
            size_set[s.name] = s
        elif s.name in params_decl:
            param_set[s.name] = s
        elif s.name in sizes_decl:
            raise bind_error(f"size '{s.name}' is set by the shape of its data file", s.span,
                              "change the data file instead of setting it")
        else:
            raise bind_error(f"unknown name '{s.name}' in --set", s.span,
                              did_you_mean(s.name, settable_names(model))
                              + " (sizes, params and weight.FAMILY can be set)")

    return out


def load_data(model: Model, data: tuple[DataInput, ...],
              budget: Budget | None = None) -> dict[str, np.ndarray]:
    """Every declared data array, loaded and checked for its number of dimensions; arrays
    read from files are charged to `budget` before they are allocated."""
    # data first: their shapes bind the sizes that no declaration gives
    data_specs = {d.name: d for d in model.data}
    arrays: dict[str, np.ndarray] = {}
    for item in data:
        spec = data_specs.get(item.name)
        if spec is None:
            raise bind_error(f"unknown data name '{item.name}' in --data", item.span,
                              did_you_mean(item.name, set(data_specs)))
        if isinstance(item.value, np.ndarray):
            arrays[item.name] = item.value
        else:
            arrays[item.name] = load_array(Path(item.value), spec, budget)
    for spec in model.data:
        if spec.name not in arrays and spec.source is not None:  # --data overrides it
            arrays[spec.name] = observe(spec)
        if spec.name not in arrays:
            raise CfcError(ErrorKind.DATA, f"no data given for '{spec.name}'", spec.span,
                           f"pass it with --data {spec.name}=PATH.npy (or .csv)")
        got = arrays[spec.name].shape
        if len(got) != len(spec.shape) and spec.name in observed_names(model, data):
            raise _observed_shape(spec, got, plural(len(spec.shape), "dimension"),
                                  f"declare '{spec.name}' with {plural(len(got), 'dimension')}, "
                                  "or name an observable that gives "
                                  f"{plural(len(spec.shape), 'dimension')}")
        if len(got) != len(spec.shape):
            raise CfcError(ErrorKind.DATA,
                           f"data '{spec.name}' has {plural(len(got), 'dimension')} (shape "
                           f"{list(got)}) but its declaration '{_declared(spec)}' has "
                           f"{len(spec.shape)}", spec.span,
                           f"give an array with {plural(len(spec.shape), 'dimension')}, or "
                           "change the declaration")

    return arrays


def bind_sizes(model: Model, arrays: dict[str, np.ndarray], size_set: dict[str, Setting],
               observed: frozenset[str] = frozenset()) -> dict[str, int]:
    """Sizes in declaration order (data-bound ones from the arrays); data shapes checked.
    A mismatch in an array from an observable (`observed`) points at its call."""
    sizes: dict[str, int] = {}
    _bind_data_sizes(model, arrays, sizes)
    for size_spec in model.sizes:
        if size_spec.default is None:
            continue
        if size_spec.name in size_set:
            value = size_set[size_spec.name].value
            if value != int(value) or value < 0:
                raise bind_error(f"size '{size_spec.name}' must be a whole number >= 0, got {value:g}",
                                  size_set[size_spec.name].span, f"for example --set {size_spec.name}=100")
            if value >= 2.0 ** 63:
                raise bind_error(f"size '{size_spec.name}' = {value:.3g} is too large for a "
                                  "64-bit integer", size_set[size_spec.name].span,
                                  "a size counts elements; more than 5e8 do not fit in memory")
            sizes[size_spec.name] = int(value)
        else:
            sizes[size_spec.name] = int(as_int(evaluate(size_spec.default, size_env(sizes)), size_spec.span, "a size"))
            if sizes[size_spec.name] < 0:
                raise bind_error(f"size '{size_spec.name}' is negative ({sizes[size_spec.name]})",
                                  size_spec.default.span, "sizes count elements and must be >= 0")
        _bind_data_sizes(model, arrays, sizes)
    _bind_data_sizes(model, arrays, sizes)
    settable = set(settable_names(model))
    for spec in model.data:
        want = shape_of(spec.shape, size_env(sizes), spec.span, f"data '{spec.name}'")
        got = arrays[spec.name].shape
        if got != want:
            dim = next(i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w)
            expr = spec.shape[dim]
            hint = f"give an array of shape {list(want)}"
            if isinstance(expr, ast.Name) and expr.name in settable:
                hint += f", or run with --set {expr.name}={got[dim]}"
            if spec.name in observed:
                raise _observed_shape(spec, got, f"shape {list(want)}",
                                      "change the observable's arguments (its size, e.g. n) to "
                                      "match the declaration"
                                      + (hint[hint.find(", or"):] if ", or" in hint else ""))
            raise CfcError(ErrorKind.DATA,
                           f"data '{spec.name}' has shape {list(got)} but its declaration "
                           f"'{_declared(spec)}' needs {list(want)}", spec.span, hint)
    return sizes


def bind_params(model: Model, sizes: dict[str, int], arrays: dict[str, np.ndarray],
                param_set: dict[str, Setting]) -> tuple[dict[str, float | int], dict[str, float | np.ndarray]]:
    """Scalar parameters join the scalars; array parameters join `arrays`."""
    scalars: dict[str, float | int] = dict(sizes)
    params: dict[str, float | np.ndarray] = {}
    for spec in model.params:
        if spec.name in param_set:
            value: float | np.ndarray = float(param_set[spec.name].value)
        else:
            value = float(np.asarray(evaluate(spec.default, Env(dict(scalars), arrays))))
        if spec.shape:
            shape = shape_of(spec.shape, size_env(sizes), spec.span, f"parameter '{spec.name}'")
            arr = np.full(shape, float(value))
            arrays[spec.name] = arr
            params[spec.name] = arr
        else:
            scalars[spec.name] = float(value)
            params[spec.name] = float(value)
    return scalars, params


def observed_names(model: Model, data: tuple[DataInput, ...]) -> frozenset[str]:
    """The data arrays an observable computes: declared `from ...` and not given as data."""
    given = {item.name for item in data}
    return frozenset(d.name for d in model.data if d.source is not None and d.name not in given)


def observe(spec: DataSpec) -> np.ndarray:
    """Call the registered observable named in `data NAME[...] from OBS(k = v, ...)`; every
    failure (unknown name, argument, type, the observable's own range check) points at the
    call. The arguments are the literals the checker kept: nothing from the file runs."""
    from cfc_dsl.runtime.observables import lookup  # only a model with `from OBS(...)` data

    source = spec.source
    assert source is not None
    found = lookup(source.name, source.name_span)
    known = {p.name: p for p in found.parameters}
    spans = source.argument_spans or tuple(source.span for _ in source.arguments)
    for (key, value), span in zip(source.arguments, spans, strict=True):
        if key not in known:
            close = did_you_mean(key, set(known))
            raise CfcError(ErrorKind.ARGUMENT, f"observable '{found.name}' has no argument "
                           f"'{key}'", span, f"{close} It takes {found.signature}"
                           if close.startswith("did you mean") else
                           f"its arguments, with their defaults: {found.signature}")
        if known[key].type is int and not isinstance(value, int):
            raise CfcError(ErrorKind.ARGUMENT, f"argument '{key}' of observable '{found.name}' "
                           f"takes a whole number, got {value!r}", span,
                           f"write it without a decimal point, e.g. {key} = {known[key].default!r}")
        known[key].check(value, found.name, span)
    array = found.call(source.span, **dict(source.arguments))
    if spec.dtype is DType.INT:
        if array.dtype.kind not in "iub":
            raise CfcError(ErrorKind.DATA, f"observable '{found.name}' gives {array.dtype} "
                           f"values, but data '{spec.name}' is declared ': int'", source.span,
                           "drop ': int' from the declaration, or use an observable that "
                           "returns integers")
        return np.array(array, dtype=np.int64, order="C")
    return np.array(array, dtype=np.float64, order="C")


def _observed_shape(spec: DataSpec, got: tuple[int, ...], want: str, hint: str) -> CfcError:
    source = spec.source
    assert source is not None
    return CfcError(ErrorKind.DATA, f"observable '{source.name}' gives data '{spec.name}' the "
                    f"shape {list(got)}, but its declaration '{_declared(spec)}' needs {want}",
                    source.span, hint)


def size_env(sizes: dict[str, int]) -> Env:
    return Env(dict(sizes), {})


def _declared(spec: DataSpec) -> str:
    """'edges[M, 2]', the declared shape as written in the model."""
    dims = ", ".join(_source_text(d) for d in spec.shape)
    return f"{spec.name}[{dims}]" if spec.shape else spec.name


def _source_text(expr: ast.Expr) -> str:
    span = expr.span
    if span.line != span.end_line:
        return "..."
    return span.source.line(span.line)[span.column - 1:span.end_column - 1]


def shape_of(dims: tuple[ast.Expr, ...], env: Env, span: Span, what: str) -> tuple[int, ...]:
    """Evaluate a declared shape; every dimension is >= 0 and the whole fits in memory."""
    shape = tuple(int(as_int(evaluate(d, env), d.span, "a dimension")) for d in dims)
    for d, n in zip(dims, shape, strict=True):
        if n < 0:
            raise bind_error(f"a dimension of {what} is negative ({n})", d.span,
                              "check the sizes used in this dimension")
    if math.prod(shape) > MAX_INSTANCES:
        raise bind_error(f"{what} would have {math.prod(shape):,} elements", span,
                          "check the sizes; more than 5e8 elements do not fit in memory")
    return shape


def _bind_data_sizes(model: Model, arrays: dict[str, np.ndarray], sizes: dict[str, int]) -> None:
    declared = {s.name for s in model.sizes if s.default is not None}
    for spec in model.data:
        for dim, expr in enumerate(spec.shape):
            if isinstance(expr, ast.Name) and expr.name not in declared and expr.name not in sizes:
                if dim < arrays[spec.name].ndim:
                    sizes[expr.name] = int(arrays[spec.name].shape[dim])
