"""`admm`: consensus ADMM over the pair families that have a closed-form prox.

Each pair instance k gets a split variable s_k = a x_u + b x_v (the difference, or the hinge
gap beta y - alpha x), and the split variable carries the pair's energy: the s-update is the
exact prox of w h(s) (for a hinge, relu(s)^2: no hard gap >= 0 constraint, which is what the
research code imposed, SEED_SPEC 3.14). The x-update takes a few projected gradient steps on
the rest of F plus the augmented term; the run stops on the primal and dual residuals (Boyd
et al. 2011, 3.3), balances rho from them (3.4.1, rescaling the scaled dual), keeps the best x
by the true F, and polishes it with projected gradient steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cfc_dsl.runtime.solvers.base import (
    SECOND_ORDER,
    Progress,
    Run,
    SolveResult,
    SolverObjective,
    StopOptions,
    StopReason,
)
from cfc_dsl.runtime.solvers.pgd import PgdOptions, ProjectedGradient
from cfc_dsl.runtime.solvers.prox import first_step
from cfc_dsl.runtime.solvers.proxrules import PairRule, rule_for
from cfc_dsl.runtime.solvers.registry import Needs, option, register
from cfc_dsl.runtime.solvers.vectors import dot, norm

_POSITIVE = (lambda v: v > 0, "> 0")


@dataclass(frozen=True)
class AdmmOptions(StopOptions):
    rho: float = option(1.0, "initial penalty rho", *_POSITIVE)
    inner_steps: int = option(5, "projected gradient steps per x-update",
                              lambda v: v >= 1, ">= 1")
    eps_abs: float = option(1e-9, "absolute tolerance of the residual stop", *_POSITIVE)
    eps_rel: float = option(1e-7, "relative tolerance of the residual stop", *_POSITIVE)
    balance: float = option(10.0, "rebalance rho when one residual exceeds this times the "
                            "other (mu; 0: fixed rho)", lambda v: v == 0 or v > 1, "0 or > 1")
    rho_factor: float = option(2.0, "factor by which rho changes when rebalanced",
                               lambda v: v > 1, "> 1")
    polish: bool = option(True, "finish from the best x with projected gradient steps")


@dataclass(frozen=True)
class Split:
    """The split instances of one family: s = a x[u] + b x[v]."""

    family: int
    rule: PairRule
    u: np.ndarray
    v: np.ndarray
    a: np.ndarray
    b: np.ndarray
    params: tuple[np.ndarray, ...]


def splits(objective: SolverObjective) -> list[Split]:
    bound = getattr(getattr(objective, "backend", None), "bound", None)
    if bound is None:
        return []
    specs = {e.name: e for e in bound.model.energies}
    weights = getattr(objective, "weights", None)
    out = []
    for i, table in enumerate(bound.families):
        rule = rule_for(specs.get(table.energy))
        if rule is None or len(table.slots) != 2 or table.size == 0:
            continue
        params = tuple(np.broadcast_to(np.asarray(p, float), (table.size,)) for p in table.params)
        scale = 1.0 if weights is None else float(weights[i])
        if np.any(scale * params[0] < 0):  # a concave term stays in the gradient part
            continue
        a, b = (np.broadcast_to(c, (table.size,)) for c in rule.split(params))
        out.append(Split(i, rule, table.slots[0], table.slots[1], a, b, params))
    return out


class _Augmented:
    """x -> f(x) + rho/2 |Ax - s + u|^2 with f = F minus the split terms, and its gradient."""

    def __init__(self, objective: SolverObjective, parts: list[Split]):
        self.objective, self.parts = objective, parts
        self.n = objective.lower.size

    def w(self, part: Split) -> np.ndarray:
        weights = getattr(self.objective, "weights", None)
        return (1.0 if weights is None else float(weights[part.family])) * part.params[0]

    def apply(self, x: np.ndarray) -> list[np.ndarray]:
        return [p.a * x[p.u] + p.b * x[p.v] for p in self.parts]

    def adjoint(self, r: list[np.ndarray]) -> np.ndarray:
        out = np.zeros(self.n)
        for p, rk in zip(self.parts, r, strict=True):
            out += np.bincount(p.u, p.a * rk, self.n) + np.bincount(p.v, p.b * rk, self.n)
        return out

    def value(self, x: np.ndarray, s: list[np.ndarray], u: list[np.ndarray], rho: float,
              grad: bool) -> tuple[float, np.ndarray | None]:
        if grad:
            f, _, g = self.objective.energy_and_grad(x)
        else:
            f, g = self.objective.energy(x)[0], None
        r = [ax - sk + uk for ax, sk, uk in zip(self.apply(x), s, u, strict=True)]
        for p in self.parts:
            w = self.w(p)
            f -= dot(w, p.rule.phi(x[p.u], x[p.v], p.params))
            if g is not None:
                gx, gy = p.rule.grad(x[p.u], x[p.v], p.params)
                g = g - np.bincount(p.u, w * gx, self.n) - np.bincount(p.v, w * gy, self.n)
        f += 0.5 * rho * sum(dot(rk, rk) for rk in r)
        if g is not None:
            g = g + rho * self.adjoint(r)
        return f, g


@register
class Admm:
    name = "admm"
    description = ("consensus ADMM: pair energies on split variables (exact s-prox), "
                   "residual stop and residual-balanced rho, best state by the true F")
    Options = AdmmOptions

    def needs(self, options: AdmmOptions) -> Needs:
        return SECOND_ORDER | Needs.INSTANCES  # reads the bound tables (families, slots)

    def solve(self, objective: SolverObjective, x0: np.ndarray, options: AdmmOptions,
              progress: Progress | None = None) -> SolveResult:
        run = Run(objective, x0, options, self.name, None, progress)
        aug = _Augmented(objective, splits(objective))
        x, rho, t = run.x.copy(), options.rho, 0.0
        s = aug.apply(x)
        u = [np.zeros_like(sk) for sk in s]
        for _ in range(options.max_steps):
            if not aug.parts or run.converged:
                break
            x, t = self._x_update(aug, x, s, u, rho, t, options.inner_steps)
            ax = aug.apply(x)
            s_old = s
            s = [p.rule.s_prox(axk + uk, aug.w(p) / rho, p.params)
                 for p, axk, uk in zip(aug.parts, ax, u, strict=True)]
            u = [uk + axk - sk for uk, axk, sk in zip(u, ax, s, strict=True)]
            primal = math.sqrt(sum(dot(axk - sk, axk - sk) for axk, sk in zip(ax, s, strict=True)))
            dual = rho * norm(aug.adjoint([sk - so for sk, so in zip(s, s_old, strict=True)]))
            f, fam, g = objective.energy_and_grad(x)
            if f < run.f and run.steps < options.max_steps:
                run.accept(run.steps + 1, x.copy(), f, fam, g, rho, 0, None)
            m = sum(sk.size for sk in s)
            eps_pri = math.sqrt(m) * options.eps_abs + options.eps_rel * max(
                math.sqrt(sum(dot(a, a) for a in ax)), math.sqrt(sum(dot(b, b) for b in s)))
            eps_dual = (math.sqrt(x.size) * options.eps_abs
                        + options.eps_rel * rho * norm(aug.adjoint(u)))
            if primal <= eps_pri and dual <= eps_dual:
                break
            if options.balance and primal > options.balance * dual:
                rho *= options.rho_factor
                u = [uk / options.rho_factor for uk in u]
            elif options.balance and dual > options.balance * primal:
                rho /= options.rho_factor
                u = [uk * options.rho_factor for uk in u]
        if options.polish:
            return self._polish(objective, run, options)
        return run.done(StopReason.CONVERGED if run.converged else StopReason.STALLED) \
            or run.result(run.steps, StopReason.STALLED)

    @staticmethod
    def _x_update(aug: _Augmented, x: np.ndarray, s: list[np.ndarray], u: list[np.ndarray],
                  rho: float, t: float, steps: int) -> tuple[np.ndarray, float]:
        """A few projected Barzilai-Borwein gradient steps with Armijo backtracking."""
        lo, hi = aug.objective.lower, aug.objective.upper
        q, g = aug.value(x, s, u, rho, True)
        assert g is not None
        if t <= 0:  # bounded, so the first step cannot cross the box (SEED_SPEC 8.2)
            t = first_step(g, lo, hi, None, 0.1)
        for _ in range(steps):
            for _ in range(40):
                trial = np.clip(x - t * g, lo, hi)
                decrease = dot(g, trial - x)
                if decrease >= 0:
                    return x, t
                q_trial, _ = aug.value(trial, s, u, rho, False)
                if q_trial <= q + 1e-4 * decrease:
                    break
                t *= 0.5
            else:
                return x, t
            q_new, g_new = aug.value(trial, s, u, rho, True)
            assert g_new is not None
            step, dg = trial - x, g_new - g
            sy = dot(step, dg)
            t = dot(step, step) / sy if sy > 0 else 2 * t
            x, q, g = trial, q_new, g_new
        return x, t

    @staticmethod
    def _polish(objective: SolverObjective, run: Run, options: AdmmOptions) -> SolveResult:
        pgd = PgdOptions(max_steps=options.max_steps, tol=options.tol)
        t = 0.0
        while run.steps < options.max_steps:
            if run.converged:
                if (done := run.done(StopReason.CONVERGED)) is not None:
                    return done
                t = 0.0
                continue
            if t <= 0:
                t = first_step(run.g, run.lo, run.hi, None, 0.1)
            accepted = ProjectedGradient._line_search(objective, run.x, run.f, run.g, run.g,
                                                      t, pgd)
            if accepted is None:
                if (done := run.done(StopReason.NO_DESCENT)) is not None:
                    return done
                t = 0.0
                continue
            x_new, t_used, backtracks, f_new, fam, g_new = accepted
            step, dg = x_new - run.x, g_new - run.g
            sy = dot(step, dg)
            t = dot(step, step) / sy if sy > 0 else 4 * t_used
            if run.accept(run.steps + 1, x_new, f_new, fam, g_new, t_used, backtracks, None):
                if (done := run.done(StopReason.STALLED)) is not None:
                    return done
        return run.done(StopReason.MAX_STEPS) or run.result(run.steps, StopReason.MAX_STEPS)
