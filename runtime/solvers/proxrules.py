"""Closed-form proximal steps of standard-library pair energies, for `prox` and `admm`.

A rule is keyed by the stdlib energy's name and applies only when the model's energy is that
builtin with its body unchanged. Each gives, vectorised over instances, the exact minimiser of
k*phi(x, y) + 1/2 |(x, y) - (x0, y0)|^2 on the box (k = weight x w x tau), the 1-D proximal map
of phi along its split variable s (for ADMM), and phi's gradient with the kernels' conventions
at kinks (Step(0) = Sign(0) = 0). Also: which energies have kinks, and colour classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # SymPy only where a user energy is derived (has_kink): a run imports none
    import sympy as sp

Arrays = tuple[np.ndarray, ...]
Pair = tuple[np.ndarray, np.ndarray]


def _shrink(d0: np.ndarray, t: np.ndarray, m: np.ndarray) -> np.ndarray:
    """argmin_d t relu(|d| - m) + 1/2 (d - d0)^2 (t >= 0)."""
    mm, a, s = np.maximum(m, 0.0), np.abs(d0), np.sign(d0)
    return np.where(a <= mm, d0, np.where(a <= mm + t, s * mm, d0 - s * t))


@dataclass(frozen=True)
class PairRule:
    """phi(x, y; params) with the weight w as params[0]; the split s = ax * x + ay * y."""

    energy: str
    formula: str  # the stdlib body, as `EnergySpec.formula()` prints it
    phi: Callable[[np.ndarray, np.ndarray, Arrays], np.ndarray]  # without w
    grad: Callable[[np.ndarray, np.ndarray, Arrays], Pair]  # of phi, without w
    free: Callable[[np.ndarray, np.ndarray, np.ndarray, Arrays], Pair]  # unconstrained prox
    x_fixed: Callable[[np.ndarray, np.ndarray, np.ndarray, Arrays], np.ndarray]  # (b, y0) -> y
    y_fixed: Callable[[np.ndarray, np.ndarray, np.ndarray, Arrays], np.ndarray]  # (x0, b) -> x
    split: Callable[[Arrays], Pair]  # (ax, ay)
    s_prox: Callable[[np.ndarray, np.ndarray, Arrays], np.ndarray]  # (v, k) -> argmin k h + |s-v|^2/2
    smooth: bool = True

    def prox(self, x0: np.ndarray, y0: np.ndarray, k: np.ndarray, p: Arrays,
             box: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> Pair:
        """The exact box-constrained prox: phi is convex (k >= 0), so the minimiser is the
        unconstrained one when feasible, else the best of the four edges' 1-D minimisers."""
        lx, hx, ly, hy = box
        fx, fy = self.free(x0, y0, k, p)
        cands = [(fx, fy)]
        for b in (lx, hx):
            cands.append((b, np.clip(self.x_fixed(b, y0, k, p), ly, hy)))
        for b in (ly, hy):
            cands.append((np.clip(self.y_fixed(x0, b, k, p), lx, hx), b))
        best_x, best_y = np.clip(fx, lx, hx), np.clip(fy, ly, hy)
        best = np.full(x0.shape, np.inf)
        with np.errstate(invalid="ignore"):
            for i, (cx, cy) in enumerate(cands):
                cx, cy = np.broadcast_to(cx, x0.shape), np.broadcast_to(cy, x0.shape)
                ok = np.isfinite(cx) & np.isfinite(cy)
                if i == 0:
                    ok &= (cx >= lx) & (cx <= hx) & (cy >= ly) & (cy <= hy)
                value = k * self.phi(cx, cy, p) + 0.5 * ((cx - x0) ** 2 + (cy - y0) ** 2)
                value = np.where(ok, value, np.inf)
                better = value < best
                best = np.where(better, value, best)
                best_x, best_y = np.where(better, cx, best_x), np.where(better, cy, best_y)
        return best_x, best_y


def _quadratic() -> PairRule:
    return PairRule(
        "quadratic", "w * (x - y)^2",
        phi=lambda x, y, p: (x - y) ** 2,
        grad=lambda x, y, p: (2 * (x - y), -2 * (x - y)),
        free=lambda x0, y0, k, p: ((x0 + y0) / 2 + (x0 - y0) / (2 * (1 + 4 * k)),
                                   (x0 + y0) / 2 - (x0 - y0) / (2 * (1 + 4 * k))),
        x_fixed=lambda b, y0, k, p: (y0 + 2 * k * b) / (1 + 2 * k),
        y_fixed=lambda x0, b, k, p: (x0 + 2 * k * b) / (1 + 2 * k),
        split=lambda p: (np.ones(1), -np.ones(1)),
        s_prox=lambda v, k, p: v / (1 + 2 * k))


def _hinge(name: str, formula: str, ab: Callable[[Arrays], Pair]) -> PairRule:
    """w relu(beta y - alpha x)^2 (directed_hinge: alpha = beta = 1)."""
    def phi(x: np.ndarray, y: np.ndarray, p: Arrays) -> np.ndarray:
        a, b = ab(p)
        return np.maximum(b * y - a * x, 0.0) ** 2

    def grad(x: np.ndarray, y: np.ndarray, p: Arrays) -> Pair:
        a, b = ab(p)
        r = np.maximum(b * y - a * x, 0.0)
        return -2 * a * r, 2 * b * r

    def free(x0: np.ndarray, y0: np.ndarray, k: np.ndarray, p: Arrays) -> Pair:
        a, b = ab(p)
        g = np.maximum(b * y0 - a * x0, 0.0) / (1 + 2 * k * (a * a + b * b))
        return x0 + 2 * k * a * g, y0 - 2 * k * b * g

    def x_fixed(c: np.ndarray, y0: np.ndarray, k: np.ndarray, p: Arrays) -> np.ndarray:
        a, b = ab(p)
        return y0 - 2 * k * b * np.maximum(b * y0 - a * c, 0.0) / (1 + 2 * k * b * b)

    def y_fixed(x0: np.ndarray, c: np.ndarray, k: np.ndarray, p: Arrays) -> np.ndarray:
        a, b = ab(p)
        return x0 + 2 * k * a * np.maximum(b * c - a * x0, 0.0) / (1 + 2 * k * a * a)

    def split(p: Arrays) -> Pair:
        a, b = ab(p)
        return -a, b

    return PairRule(name, formula, phi, grad, free, x_fixed, y_fixed, split,
                    s_prox=lambda v, k, p: np.where(v > 0, v / (1 + 2 * k), v))


def _margin() -> PairRule:
    def grad(x: np.ndarray, y: np.ndarray, p: Arrays) -> Pair:
        d = x - y
        gx = np.sign(d) * (np.abs(d) - p[1] > 0)
        return gx, -gx

    return PairRule(
        "margin_hinge", "w * relu(abs(x - y) - m)",
        phi=lambda x, y, p: np.maximum(np.abs(x - y) - p[1], 0.0),
        grad=grad,
        free=lambda x0, y0, k, p: ((x0 + y0) / 2 + _shrink(x0 - y0, 2 * k, p[1]) / 2,
                                   (x0 + y0) / 2 - _shrink(x0 - y0, 2 * k, p[1]) / 2),
        x_fixed=lambda b, y0, k, p: b - _shrink(b - y0, k, p[1]),
        y_fixed=lambda x0, b, k, p: b + _shrink(x0 - b, k, p[1]),
        split=lambda p: (np.ones(1), -np.ones(1)),
        s_prox=lambda v, k, p: _shrink(v, k, p[1]), smooth=False)


RULES: dict[str, PairRule] = {r.energy: r for r in (
    _quadratic(),
    _hinge("directed_hinge", "w * relu(y - x)^2", lambda p: (np.ones(1), np.ones(1))),
    _hinge("asym_hinge", "w * relu(beta * y - alpha * x)^2", lambda p: (p[1], p[2])),
    _margin(),
)}
"""Pair energies with a closed-form prox. `gate_benefit` (-w g delta) is linear: its exact
prox is the shifted projection clip(g + tau w delta), which is what the forward step with
the box projection already does, so it needs no rule of its own."""
LINEAR = frozenset({"gate_benefit"})


def rule_for(spec: object) -> PairRule | None:
    """The rule of an `EnergySpec`, when it is the unchanged stdlib energy of that name."""
    rule = RULES.get(getattr(spec, "name", ""))
    if rule is None or not getattr(spec, "builtin", False):
        return None
    return rule if spec.formula() == rule.formula else None  # type: ignore[attr-defined]


_KINKED = ("Relu", "AbsVal")  # continuous with a jump in the derivative at 0
_JUMPS = ("Step", "Sign")  # discontinuous themselves


def has_kink(expr: sp.Expr, slots: set[sp.Symbol]) -> bool:
    """Whether a derived energy has a kink: relu/abs (min/max rewrite to relu) of a
    slot-dependent argument not raised to a power above 1, or a step/sign of one."""
    import sympy as sp

    def walk(e: sp.Expr, squared: bool) -> bool:
        head = type(e).__name__
        depends = bool(e.free_symbols & slots)
        if depends and head in _JUMPS:
            return True
        if depends and head in _KINKED and not squared:
            return True
        if isinstance(e, sp.Pow):
            base, power = e.args
            above = bool(power.is_number and power > 1)
            return walk(base, above) or walk(power, False)
        return any(walk(a, False) for a in e.args)

    return walk(expr, False)


def colour_classes(u: np.ndarray, v: np.ndarray) -> list[np.ndarray]:
    """Instances (u[i], v[i]) split into classes in which no variable appears twice.

    Each class is a maximal matching of the instances left, built by Luby's rounds on the
    line graph: an instance joins when its priority is the lowest at both its ends among the
    candidates, then every candidate touching a joined one drops out, until none is left.
    Priorities are a fixed pseudo-random permutation, so the classes are deterministic and a
    chain needs two or three classes (priorities by instance number would take one instance
    of a chain per round, i.e. one class per edge). A maximal matching leaves at most 2*deg-1
    classes in all."""
    left = np.arange(u.size)
    left = left[u != v]  # self-loops are never proxed (the 2-D formulas need two variables)
    rank = np.random.default_rng(0).permutation(u.size)
    n = int(max(u.max(initial=-1), v.max(initial=-1))) + 1
    classes: list[np.ndarray] = []
    while left.size:
        taken = np.zeros(n, bool)
        chosen: list[np.ndarray] = []
        cand = left
        while cand.size:
            ends = np.concatenate([u[cand], v[cand]])
            owner = np.concatenate([cand, cand])
            order = np.lexsort((rank[owner], ends))  # by variable, then by priority
            head = np.ones(order.size, bool)
            head[1:] = ends[order][1:] != ends[order][:-1]
            # the lowest priority of all candidates wins at both its ends, so each round
            # takes at least one
            count = np.bincount(owner[order][head], minlength=u.size)
            win = cand[count[cand] == 2]
            chosen.append(win)
            taken[u[win]] = True
            taken[v[win]] = True
            cand = cand[~(taken[u[cand]] | taken[v[cand]])]
        members = np.sort(np.concatenate(chosen))
        classes.append(members)
        left = np.setdiff1d(left, members, assume_unique=True)
    return classes
