"""`pgd`: projected gradient, x+ = P(x - t d) with d the gradient (optionally normalised or
norm-capped, as the research code's `normalize_grads` / `max_grad_norm`), a Barzilai-Borwein
or fixed trial step, and Armijo backtracking on the actual projected displacement, so no step
raises F. The first trial step is bounded: 1/L where a certified L exists, else one that
moves no coordinate more than `first_step` of its box width (1/max|g| crossed whole boxes and
landed Landau terms on their stationary point 0). With `lipschitz_cap` it caps its steps at
2/L, tracing the contraction margin 2/L - t (off by default: Barzilai-Borwein steps longer
than 2/L are what make pgd fast).
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
    StopOptions,
    StopReason,
    usable_lipschitz,
)
from cfc_dsl.runtime.solvers.cloop import PgdLoop
from cfc_dsl.runtime.solvers.registry import Needs, option, register
from cfc_dsl.runtime.solvers.vectors import clip, dot, norm


@dataclass(frozen=True)
class PgdOptions(StopOptions):
    armijo_c: float = option(1e-4, "Armijo constant c: accept when F(x+) <= F + c g.(x+ - x)",
                             lambda v: 0 < v < 1, "in (0, 1)")
    shrink: float = option(0.5, "factor applied to a rejected trial step",
                           lambda v: 0 < v < 1, "in (0, 1)")
    max_backtracks: int = option(60, "trial steps per line search before no_descent",
                                 lambda v: v >= 0, ">= 0")
    lipschitz_cap: bool = option(False, "cap steps at 2/L from the certified Lipschitz bound "
                                 "(needs lipschitz) and trace the margin 2/L - t")
    step: float = option(0.0, "a fixed trial step t (no Barzilai-Borwein; still backtracked "
                         "when it would raise F); 0: adaptive", lambda v: v >= 0, ">= 0")
    first_step: float = option(0.1, "without a certified L, the first trial step moves no "
                               "coordinate more than this fraction of its box width",
                               lambda v: 0 < v <= 1, "in (0, 1]")
    normalize_grads: bool = option(False, "step along g/|g| instead of g (research code)")
    max_grad_norm: float = option(0.0, "rescale the step direction to this norm when longer "
                                  "(0: off)", lambda v: v >= 0, ">= 0")


_Accepted = tuple[np.ndarray, float, int, float, np.ndarray, np.ndarray]


@register
class ProjectedGradient:
    name = "pgd"
    description = ("projected gradient: Barzilai-Borwein (or fixed) trial step, Armijo "
                   "backtracking on the projected step")
    Options = PgdOptions

    def needs(self, options: PgdOptions) -> Needs:
        return SECOND_ORDER | (Needs.LIPSCHITZ if options.lipschitz_cap else Needs.NONE)

    def solve(self, objective: SolverObjective, x0: np.ndarray, options: PgdOptions,
              progress: Progress | None = None) -> SolveResult:
        # L = 0 (F linear on the box) has no finite cap: the line search alone decides
        L = usable_lipschitz(objective)
        cap = L if options.lipschitz_cap else None
        run = Run(objective, x0, options, self.name, 2.0 / cap if cap else None, progress)
        escapes, together = -1, True
        loop = PgdLoop.for_run(objective, run, options)  # the steps in C, where they apply
        while run.steps < options.max_steps:
            if run.converged:
                if (done := run.done(StopReason.CONVERGED)) is not None:
                    return done
                continue
            if escapes != run.escapes:  # the start, or after an escape: no step history
                escapes, t = run.escapes, self._first_step(run, L, options)
                together = True
            if loop is not None:
                before = run.steps
                stop, t = loop.advance(run, t, options)
                if stop is not None:
                    if (done := run.done(stop)) is not None:
                        return done
                    continue
                if run.steps > before or run.converged:
                    continue
                loop = None  # the C loop saw a stop the Python test does not: step here
            step = run.steps + 1
            d = self._direction(run.g, options)
            accepted = self._line_search(objective, run.x, run.f, run.g, d, t, options,
                                         run.rejected(step), together)
            if accepted is None:
                if (done := run.done(StopReason.NO_DESCENT)) is not None:
                    return done
                continue
            x_new, t_used, backtracks, f_new, fam, g_new = accepted
            together = backtracks == 0  # an unshrunk trial step is likely to pass again
            s, y = x_new - run.x, self._direction(g_new, options) - d
            sy = dot(s, y)
            if options.step:
                t = options.step
            else:
                t = dot(s, s) / sy if sy > 0 else t_used * 4.0
            if cap:
                t = min(t, 2.0 / cap)
            if run.accept(step, x_new, f_new, fam, g_new, t_used, backtracks,
                          2.0 / cap - t_used if cap else None):
                if (done := run.done(StopReason.STALLED)) is not None:
                    return done
        return run.done(StopReason.MAX_STEPS) or run.result(run.steps, StopReason.MAX_STEPS)

    @staticmethod
    def _direction(g: np.ndarray, options: PgdOptions) -> np.ndarray:
        if not options.normalize_grads and not options.max_grad_norm:
            return g  # the default: no norm to take (twice a step otherwise)
        size = norm(g)
        if options.normalize_grads and size > 0:
            return g / size
        if options.max_grad_norm and size > options.max_grad_norm:
            return g * (options.max_grad_norm / size)
        return g

    @staticmethod
    def _first_step(run: Run, L: float | None, options: PgdOptions) -> float:
        if options.step:
            return options.step
        if L:
            return 1.0 / L
        d = ProjectedGradient._direction(run.g, options)
        width = run.hi - run.lo
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(np.isfinite(width) & (width > 0), np.abs(d) / width, 0.0)
        worst = float(np.max(ratio)) if ratio.size else 0.0
        if worst > 0:
            return options.first_step / worst
        scale = float(np.max(np.abs(d))) if d.size else 0.0  # unbounded boxes
        return 1.0 if scale <= 1.0 else 1.0 / scale

    @staticmethod
    def _line_search(objective: SolverObjective, x: np.ndarray, f: float, g: np.ndarray,
                     d: np.ndarray, t: float, options: PgdOptions,
                     reject: Rejected | None = None, together: bool = False
                     ) -> _Accepted | None:
        """The accepted trial with its energy, family energies and gradient, or None;
        `reject` hears of each trial turned down (for the trace). With `together` (the
        trial is likely to pass) the first trial is evaluated with its gradient, so an
        accepted step costs one kernel pass; backtracking trials are energy-only."""
        lo, hi = objective.lower, objective.upper
        for backtracks in range(options.max_backtracks + 1):
            trial = clip(x - t * d, lo, hi)
            decrease = dot(g, trial - x)
            if decrease >= 0.0:  # the projected step vanished: nothing left to gain along -g
                return None
            bound = f + options.armijo_c * decrease
            if together and backtracks == 0:
                # the recorded energy is this pass's own value, so Armijo holds for it exactly;
                # a non-finite one is turned down like any other trial
                f_new, fam, g_new = objective.energy_and_grad(trial)
                if math.isfinite(f_new) and f_new <= bound:
                    return trial, t, backtracks, f_new, fam, g_new
                if reject is not None:
                    reject(f_new, fam, t, backtracks, trial)
                t *= options.shrink
                continue
            f_trial, fam_trial = objective.energy(trial)
            if math.isfinite(f_trial) and f_trial <= bound:
                # The energy recorded for x+ comes from the energy-and-gradient kernels, which
                # may round differently from the energy-only ones (or, summed in parallel, not
                # repeat to the last bit): Armijo must hold for that value too, or the recorded
                # energy could rise by an ulp. A non-finite value goes on to check_finite.
                f_new, fam, g_new = objective.energy_and_grad(trial)
                if not math.isfinite(f_new) or f_new <= bound:
                    return trial, t, backtracks, f_new, fam, g_new
            if reject is not None:
                reject(f_trial, fam_trial, t, backtracks, trial)
            t *= options.shrink
        return None
