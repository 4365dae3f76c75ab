"""`newton`: a bound-constrained trust-region Newton-CG in the style of TRON (Lin & Moré
1999) on the generated Hessian-vector products. Each step takes a projected (Cauchy) step
along -g inside the trust region, refines it by Steihaug-Toint CG on the free variables with
projected searches, and is accepted only when F falls by a fair share of what the quadratic
model predicted; the radius follows that actual/predicted ratio.

CG is preconditioned by the generated Hessian diagonal (Jacobi, one `hess_diag` pass per
step): on the random workload at 10^5 it halved the kernel passes (192 -> 91) and took 9
steps instead of 12 (docs/solvers.md). The trust region stays Euclidean; preconditioned CG
iterates need not grow in that norm, so CG stops at its first crossing of the boundary, where
the model has still fallen monotonically (each CG step minimises it along its direction).
The vector algebra avoids BLAS (vectors.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cfc_dsl.runtime.solvers.base import (
    Progress,
    Run,
    SolveResult,
    SolverObjective,
    StopOptions,
    StopReason,
)
from cfc_dsl.runtime.solvers.cgloop import CgLoop
from cfc_dsl.runtime.solvers.registry import Needs, option, register
from cfc_dsl.runtime.solvers.tronloop import TronLoop
from cfc_dsl.runtime.solvers.vectors import clip, dot, inside, norm

_EPS = float(np.finfo(np.float64).eps)
_MU0 = 0.01  # sufficient decrease of the model in the Cauchy and projected searches (TRON)


@dataclass(frozen=True)
class NewtonOptions(StopOptions):
    eta0: float = option(1e-4, "accept a step when actual/predicted decrease > eta0",
                         lambda v: 0 <= v < 1, "in [0, 1)")
    eta1: float = option(0.25, "shrink the trust region when the ratio is <= eta1",
                         lambda v: 0 < v < 1, "in (0, 1)")
    eta2: float = option(0.75, "grow the trust region when the ratio is > eta2",
                         lambda v: 0 < v < 1, "in (0, 1)")
    max_cg: int = option(200, "conjugate-gradient iterations per subspace solve",
                         lambda v: v >= 1, ">= 1")
    cg_tol: float = option(0.1, "CG stops when the free model gradient falls by this factor",
                           lambda v: 0 < v < 1, "in (0, 1)")
    max_subspace: int = option(10, "subspace solves per step (each after a projected search "
                               "that met a new bound)", lambda v: v >= 1, ">= 1")
    precondition: bool = option(True, "precondition CG by the Hessian diagonal (one hess_diag "
                                "pass per step)")


class _Model:
    """q(s) = g.s + s.Hs/2 at x, the box as bounds on x + s, one HVP per product.

    Products are saved where linearity gives them: a Cauchy trial that the box does not cut
    is s = -alpha g, so Hs = -alpha Hg from one product Hg per model; CG carries Hd of its
    direction along (the sum of its a_k Hp_k), so a projected search that the box does not
    cut needs no product either. Both agree with a fresh product to round-off."""

    def __init__(self, objective: SolverObjective, x: np.ndarray, g: np.ndarray,
                 options: NewtonOptions, cg: CgLoop | None = None):
        self.objective, self.x, self.g, self.options = objective, x, g, options
        self.cg = cg  # the CG loop in C (cgloop.py), or None: the Python loop below
        self.lo, self.hi = objective.lower, objective.upper
        self.products = 0
        self._hg: np.ndarray | None = None
        self._minv: np.ndarray | None = None

    def hv(self, v: np.ndarray) -> np.ndarray:
        self.products += 1
        return np.asarray(self.objective.hvp(self.x, v), dtype=np.float64)  # type: ignore[attr-defined]

    def q(self, s: np.ndarray, hs: np.ndarray) -> float:
        return dot(self.g, s) + 0.5 * dot(s, hs)

    def _inside(self, z: np.ndarray) -> bool:
        return inside(z, self.lo, self.hi)

    def cauchy(self, alpha: float, delta: float) -> tuple[np.ndarray, np.ndarray, float]:
        """TRON's projected search along -g: the longest alpha (by factors of 10 from the last
        step's) with |s| <= delta and q(s) <= mu0 g.s, where s = P(x - alpha g) - x."""
        gg = dot(self.g, self.g)

        def trial(a: float) -> tuple[np.ndarray, np.ndarray, bool]:
            full = self.x - a * self.g
            if self._inside(full):  # s = -a g: its q needs only g.Hg
                if self._hg is None:
                    self._hg = self.hv(self.g)
                s, hs = -a * self.g, -a * self._hg
                gs = -a * gg
                return s, hs, bool(a * math.sqrt(gg) <= delta and
                                   gs + 0.5 * dot(s, hs) <= _MU0 * gs)
            s = clip(full, self.lo, self.hi) - self.x
            hs = self.hv(s)
            return s, hs, bool(norm(s) <= delta and self.q(s, hs) <= _MU0 * dot(self.g, s))

        s, hs, ok = trial(alpha)
        if not ok:
            for _ in range(60):
                alpha *= 0.1
                s, hs, ok = trial(alpha)
                if ok:
                    break
            return s, hs, alpha
        reach = self._last_breakpoint()
        for _ in range(20):
            if alpha > reach:
                break
            s2, hs2, ok = trial(alpha * 10.0)
            if not ok:
                break
            alpha, s, hs = alpha * 10.0, s2, hs2
        return s, hs, alpha

    def _last_breakpoint(self) -> float:
        """The alpha beyond which P(x - alpha g) no longer moves."""
        g, x = self.g, self.x
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(g > 0, (x - self.lo) / g, np.where(g < 0, (x - self.hi) / g, 0.0))
        return float(np.max(t)) if t.size else 0.0

    def subspace(self, s: np.ndarray, hs: np.ndarray, delta: float
                 ) -> tuple[np.ndarray, np.ndarray]:
        """From the Cauchy step: truncated CG on the free variables of x + s, then a projected
        search along its direction; again while a search stops at a new bound."""
        opts = self.options
        goal = None
        for _ in range(opts.max_subspace):
            xc = self.x + s
            free = ((xc > self.lo) & (xc < self.hi)).astype(np.float64)
            # the free part of -(g + Hs), zero elsewhere: not times the mask, where an
            # infinite component at a fixed coordinate would give inf * 0 = NaN
            with np.errstate(invalid="ignore", over="ignore"):
                r = np.where(free != 0.0, -(self.g + hs), 0.0)
            norm_r = norm(r)
            if goal is None:
                # the forcing term min(cg_tol, sqrt|r|) makes the steps superlinear near the
                # end; once it asks for less than 10 tol, solve to below tol instead: the
                # step after would gain ~|g|^2/H, which F (round-off ~1e-16 |F|) may no longer
                # resolve, and the run would stop stalled just above tol
                goal = min(opts.cg_tol, math.sqrt(norm_r)) * norm_r
                if goal < 10.0 * opts.tol:
                    goal = min(goal, 0.5 * opts.tol)
            if norm_r <= goal or norm_r == 0.0:
                break
            d, hd, boundary = self._steihaug(free, s, r, delta, goal)
            s, hs, clipped = self._projected_search(s, hs, d, hd)
            if boundary or not clipped:
                break
        return s, hs

    def _steihaug(self, free: np.ndarray, s: np.ndarray, r: np.ndarray, delta: float,
                  tol: float) -> tuple[np.ndarray, np.ndarray, bool]:
        """CG on q(s + d) over the free variables with |s + d| <= delta: (d, Hd, whether it
        stopped on the trust-region boundary, by length or negative curvature). r is the
        free part of the model's residual -(g + Hs); CG overwrites it."""
        minv = self._jacobi(free)
        if self.cg is not None:  # the same loop in C: iterates equal to round-off
            d, hd, boundary, products = self.cg.steihaug(self.x, free, minv, s, r, delta, tol,
                                                          self.options.max_cg)
            self.products += products
            return d, hd, boundary
        z = s.copy()  # z = s + d, the model's step so far
        y = r * minv
        p = y.copy()
        hd = np.zeros_like(s)
        hp, step = np.empty_like(s), np.empty_like(s)  # reused: a CG iteration allocates nothing
        ry, dd, zz = dot(r, y), delta * delta, dot(s, s)
        for _ in range(self.options.max_cg):
            hp_full = self.hv(p)
            np.multiply(hp_full, free, out=hp)
            curvature = dot(p, hp)
            pp, zp = dot(p, p), dot(z, p)
            if curvature <= 0.0 or not math.isfinite(curvature):
                tau = _to_boundary(zz, zp, pp, dd)
                return z - s + tau * p, hd + tau * hp_full, True
            a = ry / curvature
            if zz + 2.0 * a * zp + a * a * pp >= dd:  # |z + a p|^2, past the boundary
                tau = _to_boundary(zz, zp, pp, dd)
                return z - s + tau * p, hd + tau * hp_full, True
            z += np.multiply(p, a, out=step)  # the products a * p etc., as before, in place
            zz += a * (2.0 * zp + a * pp)  # |z|^2 by its recurrence: one reduction fewer
            hd += np.multiply(hp_full, a, out=step)
            r -= np.multiply(hp, a, out=step)
            if norm(r) <= tol:
                break
            np.multiply(r, minv, out=y)
            ry_new = dot(r, y)
            p *= ry_new / ry
            p += y
            ry = ry_new
        return z - s, hd, False

    def _jacobi(self, free: np.ndarray) -> np.ndarray:
        """The preconditioner on the free set: 1 / |diag H|, the diagonal floored at a tenth
        of its mean. A coordinate near an inflection (Landau's -1 + 12 x^2 at x ~ 0.29) has
        curvature ~0: unfloored, it would take CG's first direction and the Euclidean trust
        region would end CG there. On weakly coupled random workloads (8 seeds, n = 2000 and
        20000) a floor of 1e-3 of the mean took 1483 and 1489 kernel passes, more than no
        preconditioner (1133, 1312); a tenth, 1040 and 1029; on bench/solvers.py's scenarios
        both are alike (88 and 91 at random 10^5). Ones without `precondition`."""
        if not self.options.precondition:
            return free
        if self._minv is None:
            diag = np.abs(np.asarray(self.objective.hess_diag(self.x),  # type: ignore[attr-defined]
                                     dtype=np.float64))
            self.products += 1
            finite = diag[np.isfinite(diag)]
            mean = float(np.mean(finite)) if finite.size else 0.0
            floor = 0.1 * mean if mean > 0.0 and math.isfinite(mean) else 1.0
            self._minv = 1.0 / np.where(np.isfinite(diag), np.maximum(diag, floor), floor)
        return self._minv * free

    def _projected_search(self, s: np.ndarray, hs: np.ndarray, d: np.ndarray, hd: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, bool]:
        """x + s + beta d projected onto the box, beta halved from 1 until the model falls by
        mu0 of its first-order change: (s, Hs, whether the projection cut the step)."""
        xc, gq = self.x + s, self.g + hs
        beta = 1.0
        for _ in range(30):
            full = xc + beta * d
            cut = not self._inside(full)
            if cut:
                t = clip(full, self.lo, self.hi) - xc
                ht = self.hv(t)
            else:  # t = beta d: H t from CG's Hd
                t, ht = beta * d, beta * hd
            first = dot(gq, t)
            if first < 0.0 and first + 0.5 * dot(t, ht) <= _MU0 * first:
                return s + t, hs + ht, cut and bool(np.any(t != beta * d))
            beta *= 0.5
        return s, hs, False


def _to_boundary(zz: float, zp: float, pp: float, dd: float) -> float:
    """tau >= 0 with |z + tau p|^2 = dd, from z.z, z.p, p.p (|z|^2 <= dd)."""
    if pp == 0.0:
        return 0.0
    return (-zp + math.sqrt(max(zp * zp + pp * (dd - zz), 0.0))) / pp


@register
class TrustRegionNewton:
    name = "newton"
    description = ("trust-region Newton-CG for boxes (TRON): Cauchy step, then Steihaug CG on "
                   "the free variables with Hessian-vector products")
    Options = NewtonOptions

    def needs(self, options: NewtonOptions) -> Needs:
        return Needs.HVP

    def solve(self, objective: SolverObjective, x0: np.ndarray, options: NewtonOptions,
              progress: Progress | None = None) -> SolveResult:
        run = Run(objective, x0, options, self.name, None, progress)
        escapes, delta, alpha, rejected = -1, 0.0, 1.0, 0
        x_last = run.x
        loop = TronLoop.for_run(objective, run)  # the trials in C, where they apply
        cg = None if loop is not None else CgLoop.for_objective(objective)
        while run.steps < options.max_steps:
            if run.converged:
                x_last = run.x
                if (done := run.done(StopReason.CONVERGED)) is not None:
                    return done
                continue
            if escapes != run.escapes:  # the start, or after an escape: a fresh radius, as
                escapes, alpha = run.escapes, 1.0  # long as the escape or the projected g
                delta = max(float(norm(run.x - x_last)), float(
                    norm(clip(run.x - run.g, run.lo, run.hi) - run.x)))
            if loop is not None:  # the trials below, in C, until a stop or its rows are full
                stop, delta, alpha, rejected = loop.advance(run, delta, alpha, rejected,
                                                            options)
                if stop is not None:
                    x_last = run.x
                    if (done := run.done(stop)) is not None:
                        return done
                continue
            model = _Model(objective, run.x, run.g, options, cg)
            s, hs, alpha = model.cauchy(alpha, delta)
            s, hs = model.subspace(s, hs, delta)
            x_new = clip(run.x + s, run.lo, run.hi)
            s = x_new - run.x
            predicted = model.q(s, hs)
            f_new, fam, g_new = objective.energy_and_grad(x_new)
            objective.check_finite(x_new, f_new, g_new, run.steps + 1)
            actual = f_new - run.f
            # below round-off the ratio is noise: a step that does not raise F is taken
            noise = 64.0 * _EPS * max(1.0, float(np.abs(run.fam).sum()), abs(run.f))
            if -predicted <= noise and actual > 0.0:  # F cannot resolve what is left to gain
                x_last = run.x
                if (done := run.done(StopReason.STALLED)) is not None:
                    return done
                continue
            ratio = 1.0 if -predicted <= noise else (
                actual / predicted if predicted < 0.0 else -math.inf)
            snorm = float(norm(s))
            if ratio <= options.eta1:
                delta = 0.25 * min(snorm, delta)
            elif ratio > options.eta2:
                delta = max(delta, 4.0 * snorm)
            if ratio > options.eta0 and f_new <= run.f:
                # the trace's backtracks: trust-region trials rejected before this one
                stalled = run.accept(run.steps + 1, x_new, f_new, fam, g_new, snorm, rejected,
                                     None)
                rejected = 0
                if stalled:
                    x_last = run.x
                    if (done := run.done(StopReason.STALLED)) is not None:
                        return done
                continue
            rejected += 1
            if (reject := run.rejected(run.steps + 1)) is not None:  # a trust-region trial
                reject(f_new, fam, snorm, rejected - 1, x_new)
            if delta <= 4.0 * _EPS * max(1.0, float(norm(run.x))) or rejected > 60:
                x_last = run.x
                if (done := run.done(StopReason.NO_DESCENT)) is not None:
                    return done
        return run.done(StopReason.MAX_STEPS) or run.result(run.steps, StopReason.MAX_STEPS)
