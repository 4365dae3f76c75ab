"""`lbfgsb`: SciPy's L-BFGS-B fed the compiled energy and gradient, the standard reference.
It returns the best state evaluated (not only SciPy's last iterate), maps SciPy's status to
the shared stop reasons, builds the shared trace (one row per SciPy iteration) and stops
through the shared second-order test: an escape from negative curvature restarts SciPy.
SciPy's first Cauchy step is x - g, which crosses whole boxes (from 0.9, every Landau term of
the random workload lands on its stationary point 0): each SciPy run works on x / s, with s
chosen so that the first step moves no coordinate more than `first_step` of its box width.
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
    first_step: float = option(0.1, "SciPy's first step moves no coordinate more than this "
                               "fraction of its box width (the variables are scaled)",
                               lambda v: 0 < v <= 1, "in (0, 1]")


class _Best:
    """Every evaluation SciPy asks for, at y = x / scale; keeps the lowest and the latest
    few by point."""

    def __init__(self, objective: SolverObjective, run: Run, scale: float):
        self.objective, self.run, self.scale = objective, run, scale
        self.best: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None
        self.recent: dict[bytes, tuple[float, np.ndarray, np.ndarray, np.ndarray]] = {}

    def point(self, y: np.ndarray) -> np.ndarray:
        # SciPy stays inside; the clip only undoes the scaling's rounding
        return np.clip(y * self.scale, self.objective.lower, self.objective.upper)

    def __call__(self, y: np.ndarray) -> tuple[float, np.ndarray]:
        x = self.point(y)
        f, fam, g = self.objective.energy_and_grad(x)
        self.objective.check_finite(x, f, g, self.run.steps + 1)
        entry = (f, x.copy(), fam, g)
        if len(self.recent) > 64:
            self.recent.clear()
        self.recent[x.tobytes()] = entry
        if self.best is None or f < self.best[0]:
            self.best = entry
        return f, g * self.scale


def first_scale(g: np.ndarray, lo: np.ndarray, hi: np.ndarray, fraction: float) -> float:
    """s <= 1 with SciPy's first (Cauchy) step on y = x / s, -s^2 g in x, moving no
    coordinate more than `fraction` of its box width."""
    width = hi - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.isfinite(width) & (width > 0), np.abs(g) / width, 0.0)
    worst = float(np.max(ratio)) if ratio.size else 0.0
    return min(1.0, float(np.sqrt(fraction / worst))) if worst > 0 else 1.0


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
        while True:
            if run.steps >= options.max_steps or run.converged:
                reason = StopReason.CONVERGED if run.converged else StopReason.MAX_STEPS
                if (done := run.done(reason)) is not None:
                    return done
                continue
            scale = first_scale(run.g, run.lo, run.hi, options.first_step)
            best = _Best(objective, run, scale)

            def record(yk: np.ndarray, best: _Best = best) -> None:
                entry = best.recent.get(best.point(yk).tobytes())
                if entry is not None and entry[0] <= run.f:
                    f, x, fam, g = entry
                    run.accept(run.steps + 1, x, f, fam, g, 0.0, 0, None)

            res = minimize(best, run.x / scale, jac=True, method="L-BFGS-B",
                           bounds=Bounds(run.lo / scale, run.hi / scale),
                           callback=record,
                           options={"maxiter": options.max_steps - run.steps,
                                    "maxfun": options.max_evals, "maxcor": options.memory,
                                    "ftol": options.ftol, "gtol": options.tol * scale,
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
