"""`apg`: accelerated projected gradient (FISTA) with adaptive restart and a monotone
safeguard. The extrapolated point y = x + b (x - x_prev) takes a projected step z = P(y - t g(y))
with the FISTA backtracking test; momentum restarts when it points uphill (the gradient test
(y - z).(z - x) > 0) or when z would raise F (the function test), and then a plain projected
Armijo step from x is taken instead, so the energy never increases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cfc_dsl.runtime.solvers.base import (
    SECOND_ORDER,
    Progress,
    Rejected,
    Run,
    SolveResult,
    SolverObjective,
    StopReason,
    usable_lipschitz,
)
from cfc_dsl.runtime.solvers.pgd import PgdOptions, ProjectedGradient
from cfc_dsl.runtime.solvers.registry import Needs, option, register
from cfc_dsl.runtime.solvers.vectors import dot


@dataclass(frozen=True)
class ApgOptions(PgdOptions):
    gradient_restart: bool = option(True, "restart the momentum when (y - z).(z - x) > 0 "
                                    "(off: only when F would rise, the function test)")
    grow: float = option(1.25, "trial step growth after a step that needed no backtracking",
                         lambda v: v >= 1, ">= 1")


@register
class AcceleratedGradient:
    name = "apg"
    description = ("accelerated projected gradient (FISTA) with adaptive restart and a "
                   "monotone safeguard")
    Options = ApgOptions

    def needs(self, options: ApgOptions) -> Needs:
        return SECOND_ORDER | (Needs.LIPSCHITZ if options.lipschitz_cap else Needs.NONE)

    def solve(self, objective: SolverObjective, x0: np.ndarray, options: ApgOptions,
              progress: Progress | None = None) -> SolveResult:
        L = usable_lipschitz(objective)
        run = Run(objective, x0, options, self.name, None, progress)
        lo, hi = objective.lower, objective.upper
        escapes, momentum, x_prev, t = -1, 1.0, run.x, 1.0
        while run.steps < options.max_steps:
            if run.converged:
                if (done := run.done(StopReason.CONVERGED)) is not None:
                    return done
                continue
            if escapes != run.escapes:  # the start, or after an escape: forget the momentum
                escapes, momentum, x_prev = run.escapes, 1.0, run.x
                t = ProjectedGradient._first_step(run, L, options)
            step, x = run.steps + 1, run.x
            nxt = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * momentum * momentum))
            y = np.clip(x + ((momentum - 1.0) / nxt) * (x - x_prev), lo, hi)
            moved = self._fista_step(objective, run, y, t, options, run.rejected(step))
            if moved is not None:
                z, t_used, backtracks, f_z, fam, g_z = moved
                uphill = options.gradient_restart and dot(y - z, z - x) > 0
                momentum = 1.0 if uphill else nxt
            else:  # restart: a monotone projected-gradient step from x
                momentum = 1.0
                d = ProjectedGradient._direction(run.g, options)
                moved = ProjectedGradient._line_search(objective, x, run.f, run.g, d, t,
                                                       options, run.rejected(step))
                if moved is None:
                    if (done := run.done(StopReason.NO_DESCENT)) is not None:
                        return done
                    continue
                z, t_used, backtracks, f_z, fam, g_z = moved
            x_prev = x
            t = t_used * (options.grow if backtracks == 0 else 1.0)
            if L and options.lipschitz_cap:
                t = min(t, 2.0 / L)
            if run.accept(step, z, f_z, fam, g_z, t_used, backtracks, None):
                if (done := run.done(StopReason.STALLED)) is not None:
                    return done
        return run.done(StopReason.MAX_STEPS) or run.result(run.steps, StopReason.MAX_STEPS)

    @staticmethod
    def _fista_step(objective: SolverObjective, run: Run, y: np.ndarray, t: float,
                    options: ApgOptions, reject: Rejected | None = None
                    ) -> tuple[np.ndarray, float, int, float, np.ndarray, np.ndarray] | None:
        """z = P(y - t g(y)) under the FISTA backtracking test, or None where z would not
        lower F below F(x) (then the caller restarts); `reject` hears of each trial turned
        down, by the backtracking test or the monotone safeguard (for the trace)."""
        lo, hi = objective.lower, objective.upper
        f_y, _, g_y = (run.f, run.fam, run.g) if np.array_equal(y, run.x) else \
            objective.energy_and_grad(y)
        if not (np.isfinite(f_y) and np.all(np.isfinite(g_y))):
            return None
        d_y = ProjectedGradient._direction(g_y, options)
        for backtracks in range(options.max_backtracks + 1):
            z = np.clip(y - t * d_y, lo, hi)
            s = z - y
            model = f_y + dot(g_y, s) + dot(s, s) / (2.0 * t)
            f_z, fam_z = objective.energy(z)
            if np.isfinite(f_z) and f_z <= model:
                if not f_z < run.f:  # the monotone safeguard
                    if reject is not None:
                        reject(f_z, fam_z, t, backtracks, z)
                    return None
                f_new, fam, g_new = objective.energy_and_grad(z)
                if not f_new < run.f:
                    if reject is not None:
                        reject(f_new, fam, t, backtracks, z)
                    return None
                return z, t, backtracks, f_new, fam, g_new
            if reject is not None:
                reject(f_z, fam_z, t, backtracks, z)
            t *= options.shrink
        return None
