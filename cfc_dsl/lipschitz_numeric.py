"""Numeric side of the curvature bounds: evaluate a `HessianBound` for many instances.

Interval entries evaluate their SymPy formula (lambdified); polynomial entries take the exact
max of |H_ij| on each box (endpoints and critical points, or vertices when multi-affine).
Kept apart from cfc_dsl/lipschitz.py, which derives the formulas.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import sympy as sp

if TYPE_CHECKING:
    import numpy as np

# NumPy is imported in the functions that evaluate, not here: deriving a bound (`cfc
# compile`) reads HessianBound and poly_plan only, and NumPy costs ~0.1 s of its start-up.


@dataclass(frozen=True)
class HessianBound:
    """Per energy: `entries[i][j]` >= |H_ij| on the box [lower, upper], as a SymPy expression.

    `lipschitz` is a static verdict, valid for every parameter value and box: False when the
    gradient jumps (a relu/abs kink not smoothed by a factor vanishing there) or the curvature
    is unbounded near some point (log, sqrt, 1/g, g^p with a parameter exponent). The entries
    stay sound even then: they are +oo exactly where such a jump or singularity may lie in the
    box, so a finite `evaluate_bound` value is always a valid bound.
    """

    energy: str
    slots: tuple[str, ...]
    params: tuple[str, ...]
    lipschitz: bool
    reason: str
    entries: tuple[tuple[sp.Expr, ...], ...]
    lower: tuple[sp.Symbol, ...]
    upper: tuple[sp.Symbol, ...]
    method: tuple[tuple[str, ...], ...]
    hessian: tuple[tuple[sp.Expr, ...], ...] = field(default=(), repr=False)   # the exact H


def poly_plan(h: sp.Expr, slots: tuple[sp.Symbol, ...]) -> tuple[sp.Symbol, ...] | None:
    """The slots of a polynomial entry we can maximise exactly: univariate or multi-affine."""
    used = tuple(s for s in slots if s in h.free_symbols)
    if not used or not h.is_polynomial(*used):
        return None
    if len(used) == 1 or all(d <= 1 for d in sp.Poly(h, *used).degree_list()):
        return used
    return None


@lru_cache(maxsize=128)
def _compiled(bound: HessianBound) -> tuple[list[str], dict[tuple[int, int], tuple]]:
    """Per upper-triangle entry: (None, None, formula) or (slot indices, monomials,
    coefficients), all lambdified; and the names of the parameters they read."""
    import numpy as np

    from cfc_dsl.functions import NUMPY_FUNCTIONS

    slots = tuple(sp.Symbol(s, real=True) for s in bound.slots)
    params = tuple(sp.Symbol(p, real=True) for p in bound.params)
    args, mods = params + bound.lower + bound.upper, [NUMPY_FUNCTIONS, "numpy"]
    used: set[sp.Basic] = set()
    out: dict[tuple[int, int], tuple] = {}
    for i, j in itertools.combinations_with_replacement(range(len(slots)), 2):
        entry, h = bound.entries[i][j], bound.hessian[i][j]
        plan = poly_plan(h, slots) if bound.method[i][j] == "polynomial" else None
        if plan is not None:
            used |= h.free_symbols
            monos, coeffs = zip(*sp.Poly(h, *plan).terms(), strict=True)
            out[i, j] = ([slots.index(s) for s in plan], np.array(monos),
                         sp.lambdify(args, list(coeffs), mods, cse=True))
        elif entry != 0:
            used |= entry.free_symbols
            out[i, j] = (None, None, sp.lambdify(args, entry, mods, cse=True))
    return [p.name for p in params if p in used], out


def evaluate_bound(bound: HessianBound, params: dict[str, np.ndarray | float],
                   lower: dict[str, np.ndarray | float],
                   upper: dict[str, np.ndarray | float]) -> np.ndarray:
    """Numeric bounds, shape (n_instances, k, k), for per-instance params and boxes.

    Interval entries evaluate their formula; polynomial ones take the exact max of |H_ij| on
    the box (endpoints and critical points, or vertices when multi-affine) plus a margin of
    1e-10 * sum |c| R^deg for float rounding. All round out: x * (1 + 1e-12) + 1e-300, NaN
    becomes +inf, and each distinct (params, box) row is evaluated once.
    """
    import numpy as np

    needed, fns = _compiled(bound)
    if missing := [p for p in needed if p not in params]:
        raise KeyError(f"evaluate_bound({bound.energy}): missing parameters {missing}")
    cols = [np.asarray(params.get(p, 0.0), dtype=float) for p in bound.params]
    cols += [np.asarray(box[s], dtype=float) for box in (lower, upper) for s in bound.slots]
    cols = [c.ravel() for c in np.broadcast_arrays(*cols)]
    n, k, npar = cols[0].size, len(bound.slots), len(bound.params)
    if any(np.any(a > b) for a, b in zip(cols[npar:npar + k], cols[npar + k:], strict=True)):
        raise ValueError(f"evaluate_bound({bound.energy}): a lower bound exceeds its upper bound")
    key = [c for c, p in zip(cols, list(bound.params) + [""] * 2 * k, strict=True)
           if (p in needed or not p) and n and np.any(c != c[0])]
    first, inverse = np.zeros(min(n, 1), dtype=int), np.zeros(n, dtype=int)
    if key:
        _, first, inverse = np.unique(np.column_stack(key), axis=0, return_index=True,
                                      return_inverse=True)
    cols = [c[first] for c in cols]
    out, m = np.zeros((len(first), k, k)), len(first)
    with np.errstate(all="ignore"):
        for (i, j), (idx, monos, fn) in fns.items():
            vals = fn(*cols)
            if idx is None:
                val = np.broadcast_to(np.asarray(vals, dtype=float), (m,))
            else:
                c = np.stack([np.broadcast_to(np.asarray(v, dtype=float), (m,)) for v in vals])
                val = _poly_max_abs(c, monos, [cols[npar + s] for s in idx],
                                    [cols[npar + k + s] for s in idx])
            val = np.where(np.isnan(val), np.inf, val)
            out[:, i, j] = out[:, j, i] = val * (1 + 1e-12) + 1e-300
    return out[inverse.ravel()]


def _poly_max_abs(c: np.ndarray, monos: np.ndarray, lo: list[np.ndarray],
                  hi: list[np.ndarray]) -> np.ndarray:
    """max |sum_a c_a x^a| over a box per row: exact for multi-affine polynomials (at the
    vertices) and univariate ones (endpoints, critical points), plus the rounding margin."""
    import numpy as np

    reach = [np.maximum(np.abs(a), np.abs(b)) for a, b in zip(lo, hi, strict=True)]
    scale = sum(np.abs(ca) * np.prod([r**d for r, d in zip(reach, m, strict=True)], axis=0)
                for ca, m in zip(c, monos, strict=True))
    if len(lo) == 1:
        dense = np.zeros((c.shape[1], monos.max() + 1))
        dense[:, monos[:, 0]] = c.T
        return univariate_max_abs(dense, lo[0], hi[0]) + 1e-10 * scale
    best = np.zeros(c.shape[1])
    for corner in itertools.product(*zip(lo, hi, strict=True)):
        val = sum(ca * np.prod([x**d for x, d in zip(corner, m, strict=True)], axis=0)
                  for ca, m in zip(c, monos, strict=True))
        best = np.maximum(best, np.abs(val))
    return best + 1e-10 * scale


def univariate_max_abs(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """max |p| on [a, b] per row, coefficients lowest first.

    Shifts to t in [-1, 1] and drops negligible leading terms (their size D comes back twice:
    max|p| <= max|p - dropped| + D). The roots of the derivative (real parts, clipped: extra
    candidates inside can only raise the max) are polished by Newton steps.
    """
    import numpy as np

    deg = c.shape[1] - 1
    mid, rad, q = (a + b) / 2, (b - a) / 2, c.copy()
    for i in range(deg):                                     # Taylor shift: x = mid + t
        for j in range(deg - 1, i - 1, -1):
            q[:, j] += mid * q[:, j + 1]
    q *= rad[:, None] ** np.arange(deg + 1)
    size = np.abs(q)
    keep = size > 1e-9 * np.sum(size, axis=1, keepdims=True)
    eff = np.where(keep.any(axis=1), deg - np.argmax(keep[:, ::-1], axis=1), 0)
    dropped = np.sum(np.where(np.arange(deg + 1) > eff[:, None], size, 0.0), axis=1)
    dq = q[:, 1:] * np.arange(1, deg + 1)                    # q', lowest first
    cands = [np.full(len(q), -1.0), np.full(len(q), 1.0)]
    for m in range(2, deg + 1):                              # rows whose q' has degree m - 1
        sel = np.nonzero(eff == m)[0]
        comp = np.zeros((sel.size, m - 1, m - 1))            # companion matrix of monic q'
        comp[:, 0, :] = -dq[sel, m - 2::-1] / dq[sel, m - 1][:, None]
        comp[:, np.arange(1, m - 1), np.arange(m - 2)] = 1.0
        roots = np.clip(np.linalg.eigvals(comp).real, -1.0, 1.0) if sel.size else comp[:, 0]
        for _ in range(3):
            d1, d2 = _horner(dq[sel, :m], roots), _horner(dq[sel, 1:m] * np.arange(1, m), roots)
            roots = np.clip(roots - d1 / np.where(d2 == 0, np.inf, d2), -1.0, 1.0)
        full = np.zeros((len(q), m - 1))
        full[sel] = roots
        cands += list(full.T)
    return np.max(np.abs(_horner(q, np.stack(cands, axis=1))), axis=1) + 2 * dropped


def _horner(c: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Row-wise polynomial values: c (n, d + 1) lowest first, t (n, r) -> (n, r)."""
    import numpy as np

    out = np.zeros_like(t)
    for k in range(c.shape[1] - 1, -1, -1):
        out = out * t + c[:, k:k + 1]
    return out
