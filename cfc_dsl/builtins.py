"""The one table of built-in functions: every fact about `exp`, `relu`, `hazard`, ... lives here.

One frozen `Builtin` row per function: arity, SymPy head and derivative rule, NumPy and mpmath
implementations, C spelling, interval rule for the curvature bounds, and notation. Every other
stage derives from the rows. This module imports neither SymPy nor NumPy (the checker and a
cache hit read it); each implementation takes its library as the first argument instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Interval(Enum):
    """How the curvature bounds (cfc_dsl/lipschitz.py) enclose f(u) for u in [lo, hi]."""

    INCREASING = "increasing"  # [f(lo), f(hi)]
    LOG = "log"                # increasing, and defined only where lo > 0
    ABS = "abs"                # [max(0, lo, -hi), max(-lo, hi)]
    UNIT = "unit"              # somewhere in [-1, 1]
    POWER = "power"            # SymPy writes it as a power, which the power rule bounds
    REWRITTEN = "rewritten"    # never a SymPy node: derive rewrites it into other built-ins


class Range(Enum):
    """The sign of f(u) for every real u (lets the bounds skip a case split)."""

    POSITIVE = "positive"
    NONNEG = "nonnegative"
    REAL = "real"


@dataclass(frozen=True)
class Builtin:
    """One built-in. SymPy-side callables take `f`, a namespace of every SymPy head by name
    (`f.exp`, `f.Relu`), so a rule may use other built-ins; `numpy` takes the numpy module and
    `mpmath` the mpmath module. mpmath implementations accept complex arguments (the audit's
    complex step): a piecewise function takes the branch that the real part selects."""

    name: str                                   # the .cfc spelling
    arity: tuple[int, int]                      # (fewest, most) arguments
    numpy: Callable[..., Any]
    mpmath: Callable[..., Any]
    head: str = ""             # SymPy function: a `sympy` name, or a class cfc defines (below)
    rewrite: Callable[..., Any] | None = None      # built-ins with no head: (f, *args) -> expr
    derivative: Callable[..., Any] | None = None   # cfc's own heads: (f, u) -> d/du
    fold: Callable[[Any], Any] | None = None       # cfc's own heads: value at a SymPy number
    as_exp: Callable[..., Any] | None = None       # (f, u) -> the same value in exp and log
    c: str = ""                # C and CUDA spelling: a libm function, or a helper of helpers.c.j2
    interval: Interval = Interval.REWRITTEN
    range: Range = Range.REAL
    jumps: bool = False        # a step at u = 0 (the derivative of a kink)
    keywords: tuple[str, ...] = ()   # arguments that may be passed by name (hazard's k)
    integer: bool = False      # integer arguments give an integer (usable in index arithmetic)
    internal: bool = False     # appears in derivatives only; a .cfc model cannot call it
    unicode: str = ""          # whole-call template over the argument, e.g. "|{0}|"
    latex: str = ""            # LaTeX operator name; "" gives \operatorname{name}
    latex_call: str = ""       # whole-call LaTeX template, e.g. r"\sqrt{{{0}}}"

    @property
    def defines_head(self) -> bool:
        """Whether cfc defines the SymPy class (SymPy's own would differentiate to Heaviside)."""
        return self.derivative is not None


def _np_float(np: Any, u: Any) -> Any:
    return np.asarray(u, dtype=float)


def _np_step(np: Any, u: Any) -> Any:
    u = _np_float(np, u)
    return np.where(u > 0, 1.0, np.where(np.isnan(u), u, 0.0))  # NaN stays visible


def _np_relu(np: Any, u: Any) -> Any:
    u = _np_float(np, u)
    return np.where(u > 0, u, np.where(np.isnan(u), u, 0.0))


def _np_softplus(np: Any, u: Any) -> Any:
    return np.logaddexp(0.0, u)


def _mp_sign(mp: Any, u: Any) -> Any:
    return mp.sign(mp.re(u))


_HAZARD_K = 10  # hazard's default steepness


_ROWS = (
    Builtin("exp", (1, 1), lambda np, u: np.exp(u), lambda mp, u: mp.exp(u), head="exp",
            c="exp", interval=Interval.INCREASING, range=Range.POSITIVE, latex=r"\exp"),
    Builtin("log", (1, 1), lambda np, u: np.log(u), lambda mp, u: mp.log(u), head="log",
            c="log", interval=Interval.LOG, latex=r"\log"),
    Builtin("sqrt", (1, 1), lambda np, u: np.sqrt(u), lambda mp, u: mp.sqrt(u), head="sqrt",
            c="sqrt", interval=Interval.POWER, latex_call=r"\sqrt{{{0}}}"),
    Builtin("tanh", (1, 1), lambda np, u: np.tanh(u), lambda mp, u: mp.tanh(u), head="tanh",
            c="tanh", interval=Interval.INCREASING, latex=r"\tanh"),
    Builtin("sin", (1, 1), lambda np, u: np.sin(u), lambda mp, u: mp.sin(u), head="sin",
            c="sin", interval=Interval.UNIT, latex=r"\sin"),
    Builtin("cos", (1, 1), lambda np, u: np.cos(u), lambda mp, u: mp.cos(u), head="cos",
            c="cos", interval=Interval.UNIT, latex=r"\cos"),
    # abs'(u) = sign(u), with sign(0) = 0
    Builtin("abs", (1, 1), lambda np, u: np.abs(u), lambda mp, u: -u if mp.re(u) < 0 else u,
            head="AbsVal", derivative=lambda f, u: f.Sign(u), fold=abs, c="fabs",
            interval=Interval.ABS, range=Range.NONNEG, integer=True, unicode="|{0}|",
            latex_call=r"\lvert {0} \rvert"),
    # relu'(u) = step(u) with step(0) = 0, so d/du relu(u)^2 = 0 at u = 0
    Builtin("relu", (1, 1), _np_relu, lambda mp, u: u if mp.re(u) > 0 else mp.mpf(0),
            head="Relu", derivative=lambda f, u: f.Step(u), fold=lambda u: u if u > 0 else 0,
            c="cfc_relu", interval=Interval.INCREASING, range=Range.NONNEG),
    Builtin("sigmoid", (1, 1), lambda np, u: 1.0 / (1.0 + np.exp(-_np_float(np, u))),
            lambda mp, u: 1 / (1 + mp.exp(-u)), head="Sigmoid",
            derivative=lambda f, u: f.Sigmoid(u) * (1 - f.Sigmoid(u)),
            as_exp=lambda f, u: 1 / (1 + f.exp(-u)), c="cfc_sigmoid",
            interval=Interval.INCREASING, range=Range.POSITIVE),
    # log(1 + exp(u)); the C helper is the overflow-free form
    Builtin("softplus", (1, 1), _np_softplus, lambda mp, u: mp.log1p(mp.exp(u)),
            head="Softplus", derivative=lambda f, u: f.Sigmoid(u),
            as_exp=lambda f, u: f.log(1 + f.exp(u)), c="cfc_softplus",
            interval=Interval.INCREASING, range=Range.POSITIVE),
    # min and max are written with relu, so their derivatives are one-sided and printable
    Builtin("max", (2, 2), lambda np, a, b: np.maximum(a, b), lambda mp, a, b: max(a, b),
            rewrite=lambda f, a, b: a + f.Relu(b - a), integer=True, latex=r"\max"),
    Builtin("min", (2, 2), lambda np, a, b: np.minimum(a, b), lambda mp, a, b: min(a, b),
            rewrite=lambda f, a, b: a - f.Relu(a - b), integer=True, latex=r"\min"),
    # the seed's gate 1 - exp(-softplus(k*net)), which is exactly sigmoid(k*net)
    Builtin("hazard", (1, 2),
            lambda np, net, k=float(_HAZARD_K): 1.0 - np.exp(-_np_softplus(np, np.multiply(k, net))),
            lambda mp, net, k=_HAZARD_K: 1 - mp.exp(-mp.log1p(mp.exp(k * net))),
            rewrite=lambda f, net, k=_HAZARD_K: f.Sigmoid(k * net), keywords=("k",)),
    # internal: the derivatives of relu and abs; their own derivative is 0 (almost everywhere)
    Builtin("step", (1, 1), _np_step, lambda mp, u: mp.mpf(1) if mp.re(u) > 0 else mp.mpf(0),
            head="Step", derivative=lambda f, u: 0, fold=lambda u: 1 if u > 0 else 0,
            c="cfc_step", interval=Interval.INCREASING, range=Range.NONNEG, jumps=True,
            internal=True),
    Builtin("sign", (1, 1), lambda np, u: np.sign(u), _mp_sign, head="Sign",
            derivative=lambda f, u: 0, fold=lambda u: 1 if u > 0 else (-1 if u < 0 else 0),
            c="cfc_sign", interval=Interval.INCREASING, jumps=True, internal=True),
)

BUILTINS: dict[str, Builtin] = {b.name: b for b in _ROWS}
"""Every built-in by its .cfc name, the internal step and sign included."""

CALLABLE: dict[str, Builtin] = {b.name: b for b in _ROWS if not b.internal}
"""The built-ins a .cfc model may call."""
