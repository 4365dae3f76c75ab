"""Audit stage, references: what a kernel's gradient is compared with, and the kernel probe.

`KernelProbe` calls the compiled kernels on one instance; `Oracle` evaluates a derived energy
in mpmath (exact gradient, one-sided kink variants, complex step); `finite_difference` differences
the compiled energy kernel with a tolerance from the step. `cfc_dsl.runtime.audit.gradients` runs the checks.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from cfc_dsl.derive import DerivedEnergy
from cfc_dsl.functions import NUMPY_FUNCTIONS, AbsVal, Relu, Sign, Step, mpmath_functions

EPS = float(np.finfo(np.float64).eps)
COMPLEX_STEP = 1e-30
FD_ROUNDING = 16.0  # assumed kernel energy error, in eps * max(1, sum of |terms of E|)
MAX_VARIANTS = 64


# ---------------------------------------------------------------- the kernel, one instance
class KernelProbe:
    """Calls `cfc_eg_<energy>` / `cfc_e_<energy>` on one instance: slots 0..k-1 of a k-vector."""

    def __init__(self, ffi: Any, lib: Any, energy: str, k: int, m: int):
        self.eg = getattr(lib, f"cfc_eg_{energy}")
        self.e = getattr(lib, f"cfc_e_{energy}")
        self._idx = [np.array([j], dtype=np.int64) for j in range(k)]
        self._par = [np.zeros(1) for _ in range(m)]
        self.X = np.zeros(k)
        self.G = np.zeros(k)
        def ptr(a: np.ndarray, t: str) -> Any:
            return ffi.cast(t, a.ctypes.data)

        self._args = [1] + [ptr(a, "int64_t *") for a in self._idx] \
            + [ptr(a, "double *") for a in self._par]
        self._xp = ptr(self.X, "double *")
        self._gp = ptr(self.G, "double *")

    def _load(self, x: np.ndarray, p: np.ndarray) -> None:
        self.X[:] = x
        for arr, value in zip(self._par, p, strict=True):
            arr[0] = value

    def grad(self, x: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray]:
        self._load(x, p)
        self.G[:] = 0.0
        energy = float(self.eg(*self._args, 1.0, self._xp, self._gp))
        return energy, self.G.copy()

    def energy(self, x: np.ndarray, p: np.ndarray) -> float:
        self._load(x, p)
        return float(self.e(*self._args, self._xp))


# ---------------------------------------------------------------- exact references
def _terms(e: sp.Expr) -> list[sp.Expr]:
    return list(e.args) if e.is_Add else [e]


def kink_arguments(d: DerivedEnergy) -> list[sp.Expr]:
    """Arguments u of every relu/abs (and their step/sign) whose sign flip is a kink in x."""
    found: list[sp.Expr] = []
    slots = set(d.slots)
    for e in (d.expr, *d.grad):
        for node in sorted(e.atoms(Relu, AbsVal, Step, Sign), key=sp.default_sort_key):
            u = node.args[0]
            if u.free_symbols & slots and not any(u == v or u == -v for v in found):
                found.append(u)
    return found


def finite_mpf(v: Any) -> bool:
    """Whether v is a finite mpmath real (not None, not a list, not nan or inf)."""
    return isinstance(v, mpmath.mpf) and bool(mpmath.isfinite(v))


class Oracle:
    """mpmath (and float) evaluations of one derived energy, built once per energy."""

    def __init__(self, d: DerivedEnergy):
        self.d = d
        args = list(d.slots) + list(d.params)
        self.args = args
        # the table's mpmath implementations take complex arguments too: each non-smooth one
        # takes the analytic branch its real part selects, so complex steps work off the kinks
        real = [mpmath_functions(), "mpmath"]
        self.energy = sp.lambdify(args, d.expr, real)
        self.energy_terms = sp.lambdify(args, _terms(d.expr), real)
        self.energy_c = self.energy  # one function serves the complex step too
        self.grads = [sp.lambdify(args, g, real) for g in d.grad]
        self.grad_terms = [sp.lambdify(args, _terms(g), real) for g in d.grad]
        self.kinks = kink_arguments(d)
        self.kink_mp = [sp.lambdify(args, u, real) for u in self.kinks]
        self.kink_terms = [sp.lambdify(args, _terms(u), real) for u in self.kinks]
        self.kink_np = [sp.lambdify(args, u, [NUMPY_FUNCTIONS, "numpy"]) for u in self.kinks]
        self.kink_slots = [[i for i, s in enumerate(d.slots) if s in u.free_symbols]
                           for u in self.kinks]
        # step/sign nodes of each gradient component, with the kink they belong to
        self.jump_nodes: list[list[tuple[sp.Expr, int]]] = []
        for g in d.grad:
            nodes = []
            for node in sorted(g.atoms(Step, Sign), key=sp.default_sort_key):
                u = node.args[0]
                j = next((j for j, v in enumerate(self.kinks) if u == v or u == -v), None)
                if j is not None:
                    nodes.append((node, j))
            self.jump_nodes.append(nodes)
        self._variants: dict[tuple[int, tuple[tuple[int, int], ...]], Callable[..., Any]] = {}

    def variant(self, slot: int, choice: tuple[tuple[int, int], ...]) -> Callable[..., Any]:
        """The gradient component with some step/sign nodes replaced by constants."""
        key = (slot, choice)
        if key not in self._variants:
            nodes = self.jump_nodes[slot]
            subs = {nodes[n][0]: sp.Integer(v) for n, v in choice}
            g = self.d.grad[slot].xreplace(subs)
            self._variants[key] = sp.lambdify(self.args, g, [mpmath_functions(), "mpmath"])
        return self._variants[key]

    def kink_variants(self, s: int, ambiguous: set[int], mp_args: list[Any],
                      g: float) -> tuple[float, Any] | None:
        """The closest reference when step/sign nodes of ambiguous kinks take either side."""
        nodes = [(n, node) for n, (node, j) in enumerate(self.jump_nodes[s])
                 if j in ambiguous]
        if not nodes:
            return None
        options = [[(n, v) for v in ((0, 1) if isinstance(node, Step) else (-1, 0, 1))]
                   for n, node in nodes]
        best: tuple[float, Any] | None = None
        for count, choice in enumerate(itertools.product(*options)):
            if count >= MAX_VARIANTS:
                break
            ref = mp_call(self.variant(s, tuple(choice)), mp_args)
            if finite_mpf(ref):
                err = kernel_error(g, ref)
                if best is None or err < best[0]:
                    best = (err, ref)
        return best

    def complex_step(self, s: int, mp_args: list[Any]) -> Any:
        """Im E(x + i h e_s) / h in mpmath; None where it is undefined or not finite."""
        args = list(mp_args)
        h = mpmath.mpf(COMPLEX_STEP) * max(1, abs(args[s]))
        args[s] = mpmath.mpc(args[s], h)
        value = mp_call(self.energy_c, args)
        if value is None:
            return None
        d = mpmath.im(value) / h
        return d if finite_mpf(d) else None


def mp_call(fn: Callable[..., Any], args: Sequence[Any]) -> Any:
    """fn(*args) with plain numbers as mpf; None where it is undefined (a domain error)."""
    try:
        value = fn(*args)
    except (ZeroDivisionError, ValueError, OverflowError, TypeError):
        return None
    return [_as_mp(v) for v in value] if isinstance(value, (list, tuple)) else _as_mp(value)


def _as_mp(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return mpmath.mpf(value)
    return value


def magnitude(terms: Any) -> Any:
    """The sum of |terms| (from `mp_call`), or None where a term is missing or not finite."""
    if terms is None:
        return None
    vals = terms if isinstance(terms, (list, tuple)) else [terms]
    if not all(finite_mpf(v) for v in vals):
        return None
    return mpmath.fsum(abs(v) for v in vals)


def kernel_error(kernel: float, reference: Any) -> float:
    """|kernel - reference| in mpmath, as a float; inf for a non-finite kernel value."""
    if not math.isfinite(kernel):
        return math.inf
    return float(abs(mpmath.mpf(kernel) - reference))


# ---------------------------------------------------------------- finite differences
def finite_difference(probe: KernelProbe, oracle: Oracle, x: np.ndarray, p: np.ndarray, s: int,
                      lo: float, hi: float, e_mag: Any) -> tuple[float, float] | None:
    """Richardson-checked difference of the energy kernel along slot s, with a tolerance."""
    h = EPS ** (1 / 3) * max(1.0, abs(float(x[s])))
    if hi > lo:
        h = min(h, (hi - lo) / 8)
    for _ in range(5):  # shrink the step (down to h/4096) to stay off kinks
        stencil = _stencil(float(x[s]), h, lo, hi)
        nodes = [float(x[s]) + o * h / 2**n for o in stencil[0] for n in range(3)]
        if not _crosses_kink(oracle, x, p, s, nodes):
            break
        h /= 8
    else:
        return None
    offsets, coeffs = stencil
    d = [_difference(probe, x, p, s, h / 2**n, offsets, coeffs) for n in range(3)]
    if any(v is None for v in d):
        return None
    d1, d2, d3 = (float(v) for v in d)  # type: ignore[arg-type]
    # truncation error of D(h/4) from the observed convergence order (2 where smooth,
    # lower at a singular edge such as g^1.5 at g = 0), clipped to [1/4, 2]
    a, b = abs(d1 - d2), abs(d2 - d3)
    order = 2.0 if b == 0 or a == 0 else min(2.0, max(0.25, math.log2(a / b)))
    truncation = b / (2**order - 1)
    mag = float(max(1, e_mag)) if e_mag is not None else 1.0
    rounding = sum(abs(c) for c in coeffs) * FD_ROUNDING * EPS * mag / (h / 4)
    return d3, 2 * truncation + 2 * rounding


def _difference(probe: KernelProbe, x: np.ndarray, p: np.ndarray, s: int, h: float,
                offsets: tuple[float, ...], coeffs: tuple[float, ...]) -> float | None:
    total = 0.0
    for o, c in zip(offsets, coeffs, strict=True):
        y = x.copy()
        y[s] = x[s] + o * h
        f = probe.energy(y, p)
        if not math.isfinite(f):
            return None
        total += c * f
    return total / h


def _crosses_kink(o: Oracle, x: np.ndarray, p: np.ndarray, s: int, nodes: list[float]) -> bool:
    cols = [np.full(len(nodes) + 1, v) for v in x] + [np.full(len(nodes) + 1, v) for v in p]
    cols[s] = np.array([float(x[s]), *nodes])
    for j, slots in enumerate(o.kink_slots):
        if s not in slots:
            continue
        with np.errstate(all="ignore"):
            vals = np.broadcast_to(np.asarray(o.kink_np[j](*cols), float), cols[s].shape)
        signs = np.sign(vals)
        if np.any(signs == 0) or np.any(signs != signs[0]) or not np.all(np.isfinite(vals)):
            return True
    return False


def _stencil(x: float, h: float, lo: float, hi: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Central difference inside the box; second-order one-sided on a face."""
    if not hi > lo or (x - h >= lo and x + h <= hi):
        return (-1.0, 1.0), (-0.5, 0.5)
    if x + 2 * h <= hi:
        return (0.0, 1.0, 2.0), (-1.5, 2.0, -0.5)
    return (0.0, -1.0, -2.0), (1.5, -2.0, 0.5)
