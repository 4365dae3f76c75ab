"""`lbfgsb`: SciPy's L-BFGS-B fed the compiled energy and gradient, the standard reference.
It returns the best state evaluated (not only SciPy's last iterate), maps SciPy's status to
the shared stop reasons, builds the shared trace (one row per SciPy iteration) and stops
through the shared second-order test: an escape from negative curvature restarts SciPy.
"""

from __future__ import annotations

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
from cfc_dsl.runtime.solvers.registry import Needs, option, register


@dataclass(frozen=True)
class LbfgsbOptions(StopOptions):
    memory: int = option(10, "limited-memory corrections kept (SciPy's maxcor)",
                         lambda v: v >= 1, ">= 1")
    max_evals: int = option(100000, "energy-and-gradient evaluations per SciPy run (maxfun)",
                            lambda v: v >= 1, ">= 1")
    max_line_search: int = option(20, "line-search evaluations per iteration (maxls)",
                                  lambda v: v >= 1, ">= 1")


class _Best:
    """Every evaluation SciPy asks for; keeps the lowest and the latest few by point."""

    def __init__(self, objective: SolverObjective, run: Run):
        self.objective, self.run = objective, run
        self.best: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None
        self.recent: dict[bytes, tuple[float, np.ndarray, np.ndarray, np.ndarray]] = {}

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        x = np.clip(x, self.objective.lower, self.objective.upper)  # SciPy stays inside; exact
        f, fam, g = self.objective.energy_and_grad(x)
        self.objective.check_finite(x, f, g, self.run.steps + 1)
        entry = (f, x.copy(), fam, g)
        if len(self.recent) > 64:
            self.recent.clear()
        self.recent[x.tobytes()] = entry
        if self.best is None or f < self.best[0]:
            self.best = entry
        return f, g


_REASONS = {0: StopReason.CONVERGED, 1: StopReason.MAX_STEPS, 2: StopReason.NO_DESCENT}


@register
class Lbfgsb:
    name = "lbfgsb"
    description = "SciPy's L-BFGS-B on the compiled energy and gradient (the reference)"
    Options = LbfgsbOptions

    def needs(self, options: LbfgsbOptions) -> Needs:
        return SECOND_ORDER

    def solve(self, objective: SolverObjective, x0: np.ndarray, options: LbfgsbOptions,
              progress: Progress | None = None) -> SolveResult:
        from scipy.optimize import Bounds, minimize

        run = Run(objective, x0, options, self.name, None, progress)
        bounds = Bounds(objective.lower, objective.upper)
        while True:
            if run.steps >= options.max_steps or run.converged:
                reason = StopReason.CONVERGED if run.converged else StopReason.MAX_STEPS
                if (done := run.done(reason)) is not None:
                    return done
                continue
            best = _Best(objective, run)

            def record(xk: np.ndarray, best: _Best = best) -> None:
                entry = best.recent.get(np.clip(xk, objective.lower, objective.upper).tobytes())
                if entry is not None and entry[0] <= run.f:
                    f, x, fam, g = entry
                    run.accept(run.steps + 1, x, f, fam, g, 0.0, 0, None)

            res = minimize(best, run.x, jac=True, method="L-BFGS-B", bounds=bounds,
                           callback=record,
                           options={"maxiter": options.max_steps - run.steps,
                                    "maxfun": options.max_evals, "maxcor": options.memory,
                                    "ftol": options.ftol, "gtol": options.tol,
                                    "maxls": options.max_line_search})
            if best.best is not None and best.best[0] < run.f:  # a lower point than the last
                f, x, fam, g = best.best
                run.accept(run.steps + 1, x, f, fam, g, 0.0, 0, None)
            reason = _REASONS.get(int(res.status), StopReason.NO_DESCENT)
            if reason is StopReason.CONVERGED and not run.converged:
                reason = StopReason.STALLED  # SciPy's relative-reduction (ftol) test
            if reason is StopReason.MAX_STEPS and run.steps < options.max_steps:
                reason = StopReason.NO_DESCENT  # out of evaluations, not of steps
            if (done := run.done(reason)) is not None:
                return done
