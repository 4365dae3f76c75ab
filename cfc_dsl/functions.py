"""SymPy functions for cfc's non-smooth and numerically delicate built-ins.

SymPy's own Max, Abs and Heaviside differentiate into Heaviside/DiracDelta, which have no
C spelling we trust. These classes fix the one-sided derivative we want instead:
relu'(u) = step(u) with step(0) = 0, so d/du relu(u)^2 = 0 at u = 0; abs'(u) = sign(u).
Each has a NumPy implementation (for the Python backend) and an mpmath one (for audits).
"""

from __future__ import annotations

import numpy as np
import sympy as sp


class Step(sp.Function):
    """1 for u > 0, else 0. The derivative of relu; its own derivative is 0 (a.e.)."""

    nargs = 1
    is_real = True

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.S.Zero

    @classmethod
    def eval(cls, u: sp.Expr) -> sp.Expr | None:
        if u.is_Number:
            return sp.S.One if u > 0 else sp.S.Zero
        return None


class Relu(sp.Function):
    """max(u, 0)."""

    nargs = 1
    is_real = True

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return Step(self.args[0])

    @classmethod
    def eval(cls, u: sp.Expr) -> sp.Expr | None:
        if u.is_Number:
            return u if u > 0 else sp.S.Zero
        return None


class Sign(sp.Function):
    """-1, 0 or 1: the derivative of abs (0 at the kink)."""

    nargs = 1
    is_real = True

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.S.Zero

    @classmethod
    def eval(cls, u: sp.Expr) -> sp.Expr | None:
        if u.is_Number:
            return sp.sign(u)
        return None


class AbsVal(sp.Function):
    """|u|, differentiated as sign(u)."""

    nargs = 1
    is_real = True

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return Sign(self.args[0])

    @classmethod
    def eval(cls, u: sp.Expr) -> sp.Expr | None:
        if u.is_Number:
            return abs(u)
        return None


class Sigmoid(sp.Function):
    """1 / (1 + exp(-u))."""

    nargs = 1
    is_real = True

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        s = Sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, u: sp.Expr, **kwargs: object) -> sp.Expr:
        return 1 / (1 + sp.exp(-u))


class Softplus(sp.Function):
    """log(1 + exp(u)), printed in its overflow-free form."""

    nargs = 1
    is_real = True

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return Sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, u: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.log(1 + sp.exp(u))


def _np_step(u: np.ndarray) -> np.ndarray:
    u = np.asarray(u, dtype=float)
    return np.where(u > 0, 1.0, np.where(np.isnan(u), u, 0.0))  # NaN stays visible


def _np_relu(u: np.ndarray) -> np.ndarray:
    u = np.asarray(u, dtype=float)
    return np.where(u > 0, u, np.where(np.isnan(u), u, 0.0))


def _np_sign(u: np.ndarray) -> np.ndarray:
    return np.sign(u)


def _np_sigmoid(u: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-u))


def _np_softplus(u: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, u)


NUMPY_FUNCTIONS = {
    "Step": _np_step, "Relu": _np_relu, "Sign": _np_sign, "AbsVal": np.abs,
    "Sigmoid": _np_sigmoid, "Softplus": _np_softplus,
}


def _mp(name: str):  # type: ignore[no-untyped-def]
    import mpmath

    table = {
        "Step": lambda u: mpmath.mpf(1) if u > 0 else mpmath.mpf(0),
        "Relu": lambda u: u if u > 0 else mpmath.mpf(0),
        "Sign": lambda u: mpmath.sign(u),
        "AbsVal": lambda u: abs(u),
        "Sigmoid": lambda u: 1 / (1 + mpmath.exp(-u)),
        "Softplus": lambda u: mpmath.log1p(mpmath.exp(u)),
    }
    return table[name]


def mpmath_functions() -> dict[str, object]:
    """Implementations for `sympy.lambdify(..., modules=[this, "mpmath"])`."""
    return {name: _mp(name) for name in NUMPY_FUNCTIONS}


def hazard(net: sp.Expr, k: sp.Expr) -> sp.Expr:
    """The seed's gate: 1 - exp(-softplus(k*net)), which is exactly sigmoid(k*net)."""
    return Sigmoid(k * net)


_TEN = sp.Integer(10)  # hazard's default steepness k

BUILTINS = {
    "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "abs": AbsVal, "relu": Relu,
    "softplus": Softplus, "sigmoid": Sigmoid, "tanh": sp.tanh, "sin": sp.sin, "cos": sp.cos,
    # min/max are written with relu so their derivatives are one-sided and printable
    "max": lambda a, b: a + Relu(b - a),
    "min": lambda a, b: a - Relu(a - b),
    "hazard": lambda net, k=_TEN: hazard(net, k),
}
