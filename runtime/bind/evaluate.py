"""Vectorised evaluation of checked .cfc expressions over NumPy arrays (bind stage).

Loop indices are int64 arrays with one entry per instance, so a family of a million
factors is bound with a handful of array operations. Out-of-range indices raise a
`CfcError` that names the array, the bad index, and the instance where it happened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from cfc_dsl import syntax as ast
from cfc_dsl.builtins import CALLABLE
from cfc_dsl.diagnostics import CfcError, ErrorKind, Span

Value = np.ndarray | float | int


@dataclass
class Env:
    """Names visible to an expression: sizes, params, data arrays and loop indices."""

    scalars: Mapping[str, Value]
    arrays: Mapping[str, np.ndarray]
    loops: dict[str, np.ndarray] = field(default_factory=dict)
    where: Callable[[int], str] = lambda i: ""  # describes instance i for messages


# the NumPy implementation of each built-in's row (cfc_dsl/builtins.py)
_FUNCS: dict[str, Callable[..., Value]] = {name: partial(b.numpy, np)
                                           for name, b in CALLABLE.items()}


def evaluate(expr: ast.Expr, env: Env) -> Value:
    if isinstance(expr, ast.Number):
        return int(expr.value) if expr.is_integer else expr.value
    if isinstance(expr, ast.Name):
        if expr.name in env.loops:
            return env.loops[expr.name]
        if expr.name not in env.scalars and expr.name in env.arrays:  # scalar data (0-d)
            return env.arrays[expr.name][()]
        return env.scalars[expr.name]
    if isinstance(expr, ast.Index):
        return _index(expr, env)
    if isinstance(expr, ast.Unary):
        value = evaluate(expr.operand, env)
        return np.logical_not(value) if expr.op == "not" else -value  # type: ignore[operator]
    if isinstance(expr, ast.Binary):
        return _binary(expr, env)
    assert isinstance(expr, ast.Call)
    args = [evaluate(a.value, env) for a in expr.slot_args]
    with np.errstate(all="ignore"):
        return _FUNCS[expr.name](*args)


def _binary(expr: ast.Binary, env: Env) -> Value:
    a = evaluate(expr.left, env)
    b = evaluate(expr.right, env)
    op = expr.op
    if op in ("+", "-", "*") and _is_int(a) and _is_int(b):
        return _checked(op, a, b, expr, env)
    with np.errstate(all="ignore"):
        if op == "+":
            return a + b  # type: ignore[operator]
        if op == "-":
            return a - b  # type: ignore[operator]
        if op == "*":
            return a * b  # type: ignore[operator]
        if op == "/":
            return np.true_divide(a, b)
        if op == "^":
            return np.power(np.asarray(a, dtype=float), b)
    if op in ("//", "%"):
        zero = np.asarray(b) == 0
        if np.any(zero):
            where = env.where(int(np.flatnonzero(zero)[0]) if zero.ndim else 0)
            raise CfcError(ErrorKind.BIND, f"integer {'division' if op == '//' else 'modulo'} by "
                           f"zero{' ' + where if where else ''}", expr.right.span,
                           f"make the right side of '{op}' nonzero; check the sizes it uses")
        return np.floor_divide(a, b) if op == "//" else np.mod(a, b)
    table = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
             "==": np.equal, "!=": np.not_equal, "and": np.logical_and, "or": np.logical_or}
    return table[op](a, b)


def _is_int(v: Value) -> bool:
    return isinstance(v, int) or (isinstance(v, np.ndarray | np.integer) and v.dtype.kind in "iu")


def _checked(op: str, a: Value, b: Value, expr: ast.Binary, env: Env) -> Value:
    """int64 + - * that refuses to wrap: NumPy would wrap silently and index the wrong
    element. A float estimate clears most instances; those near 2^63 are redone exactly."""
    x, y = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    fx, fy = x.astype(float), y.astype(float)
    estimate = {"+": fx + fy, "-": fx - fy, "*": fx * fy}[op]
    near = np.abs(estimate) >= 2.0 ** 62
    if np.any(near):
        nx, ny = np.broadcast_arrays(x, y)
        exact = {"+": nx + ny, "-": nx - ny, "*": nx * ny}[op]
        wraps = near & ((exact >= INT64_LIMIT) | (exact < -INT64_LIMIT))
        if np.any(wraps):
            first = int(np.flatnonzero(np.broadcast_to(wraps, np.broadcast_shapes(
                wraps.shape, (1,))))[0])
            where = env.where(first)
            raise CfcError(ErrorKind.BIND, "integer overflow: this index arithmetic passes "
                           f"the 64-bit range{' ' + where if where else ''}", expr.span,
                           "keep index expressions within +-9.2e18; check the sizes and "
                           "constants they multiply")
    with np.errstate(all="ignore"):
        out = {"+": np.add, "-": np.subtract, "*": np.multiply}[op](
            np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
    return out if out.ndim else int(out)


def _index(expr: ast.Index, env: Env) -> Value:
    array = env.arrays[expr.name]
    idx = [np.asarray(evaluate(i, env)) for i in expr.indices]
    for dim, (values, sub) in enumerate(zip(idx, expr.indices, strict=True)):
        check_index(values, array.shape[dim], expr.name, dim, sub.span, env)
    return array[tuple(idx)]


def check_index(values: np.ndarray, extent: int, name: str, dim: int, span: Span, env: Env) -> None:
    """Raise a bind error at the first instance whose index falls outside [0, extent)."""
    values = np.asarray(values)
    bad = (values < 0) | (values >= extent)
    if not np.any(bad):
        return
    first = int(np.flatnonzero(np.broadcast_to(bad, np.broadcast_shapes(bad.shape, (1,))))[0])
    value = int(np.broadcast_to(values, bad.shape if bad.ndim else (1,)).flat[first])
    where = env.where(first)
    axis = f" in dimension {dim + 1}" if dim else ""
    hint = (f"'{name}' has no elements{axis} at these sizes; check the sizes, or the range "
            "bounds that reach it" if extent == 0 else
            f"valid indices are 0..{extent - 1}; check the range bounds or the data")
    raise CfcError(ErrorKind.BIND,
                   f"index {value} is out of range for '{name}'{axis} (size {extent})"
                   + (f" {where}" if where else ""), span, hint)


INT64_LIMIT = 2 ** 63


def as_int(value: Value, span: Span, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except OverflowError:  # a Python int beyond 64 bits
        arr = np.asarray(float(value))  # type: ignore[arg-type]
    if arr.dtype.kind == "O":  # Python ints beyond 64 bits, in an array
        arr = arr.astype(float)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise CfcError(ErrorKind.BIND, f"{what} is not a whole number", span,
                           "integer positions must come from integer data or sizes")
        if np.any(np.abs(arr) >= INT64_LIMIT):
            big = float(np.asarray(arr).flat[int(np.argmax(np.abs(arr)))])
            raise CfcError(ErrorKind.BIND, f"{what} is {big:.3g}, too large for a 64-bit integer",
                           span, "check the sizes and the arithmetic that gives it")
        arr = arr.astype(np.int64)
    return arr.astype(np.int64, copy=False)
