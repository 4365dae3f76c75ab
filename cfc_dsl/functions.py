"""The SymPy, NumPy and mpmath faces of the built-in table (cfc_dsl/builtins.py).

SymPy's own Max, Abs and Heaviside differentiate into Heaviside/DiracDelta, which have no
C spelling we trust, so cfc defines its own heads (Relu, AbsVal, Step, Sign, Sigmoid,
Softplus). They are built here from the rows' derivative rules: nothing about one function
is written in this module. `sympy_call` is what derive uses for a call to a built-in.
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace
from typing import Any

import sympy as sp
from sympy.core.function import FunctionClass

from cfc_dsl.builtins import BUILTINS, Builtin


def _own_head(b: Builtin) -> FunctionClass:
    """A SymPy function class for row `b`, differentiated by the row's rule."""
    rule, fold, as_exp = b.derivative, b.fold, b.as_exp
    assert rule is not None

    def fdiff(self: sp.Function, argindex: int = 1) -> sp.Expr:
        return sp.sympify(rule(HEADS_NS, *self.args))

    def eval(cls: FunctionClass, *args: sp.Expr) -> sp.Expr | None:
        if fold is not None and all(a.is_Number for a in args):
            return sp.sympify(fold(*args))
        return None

    body: dict[str, Any] = {"nargs": b.arity[1], "is_real": True, "fdiff": fdiff,
                            "eval": classmethod(eval), "__module__": __name__,
                            "__qualname__": b.head, "__doc__": f"cfc's {b.name}(u)."}
    if as_exp is not None:
        body["_eval_rewrite_as_exp"] = lambda self, *args, **kwargs: as_exp(HEADS_NS, *args)
    return FunctionClass(b.head, (sp.Function,), body)


HEADS: dict[str, Any] = {b.head: _own_head(b) if b.defines_head else getattr(sp, b.head)
                         for b in BUILTINS.values() if b.head}
"""Every SymPy head a built-in uses, by name: SymPy's exp, log, ... and cfc's own classes."""
HEADS_NS = SimpleNamespace(**HEADS)

FUNCTION_CLASSES: dict[FunctionClass, Builtin] = {
    HEADS[b.head]: b for b in BUILTINS.values()
    if b.head and isinstance(HEADS[b.head], FunctionClass)}
"""The built-ins that stay one SymPy node (sqrt becomes a power; min, max, hazard rewrite)."""

Step = HEADS["Step"]
Relu = HEADS["Relu"]
Sign = HEADS["Sign"]
AbsVal = HEADS["AbsVal"]
Sigmoid = HEADS["Sigmoid"]
Softplus = HEADS["Softplus"]


def sympy_call(name: str, args: list[sp.Expr]) -> sp.Expr:
    """The SymPy expression of built-in `name` applied to `args` (positional order)."""
    b = BUILTINS[name]
    if b.rewrite is not None:
        return b.rewrite(HEADS_NS, *args)
    return HEADS[b.head](*args)


def numpy_functions() -> dict[str, Any]:
    """cfc's own heads for `sympy.lambdify(..., modules=[this, "numpy"])`, also importable
    as NUMPY_FUNCTIONS. Built on first use: derive and codegen need no NumPy (~0.1 s of
    start-up), which `cfc compile` then imports for the graph check alone."""
    import numpy as np

    return {b.head: partial(b.numpy, np) for b in BUILTINS.values() if b.defines_head}


def __getattr__(name: str) -> Any:  # PEP 562: NUMPY_FUNCTIONS is made on first access
    if name == "NUMPY_FUNCTIONS":
        table = globals()["NUMPY_FUNCTIONS"] = numpy_functions()
        return table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def mpmath_functions() -> dict[str, Any]:
    """cfc's own heads for `sympy.lambdify(..., modules=[this, "mpmath"])`; they accept
    complex arguments too (each piecewise one takes the branch its real part selects)."""
    import mpmath

    return {b.head: partial(b.mpmath, mpmath) for b in BUILTINS.values() if b.defines_head}
