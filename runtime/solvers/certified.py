"""`certified`: x+ = P(x - g/L) with the certified global L (cfc_dsl.runtime.lipschitz),
no line search. The descent lemma gives F(x+) <= F(x) - (L/2)|x+ - x|^2; a step that still
reads higher (round-off near the minimum) is not taken, and the run stops as stalled. Like
every solver it stops through the shared second-order test (`Run.done`). The problem
refuses to run it, naming the factor, when the model has no finite L.
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
from cfc_dsl.runtime.solvers.registry import Needs, register


@dataclass(frozen=True)
class CertifiedOptions(StopOptions):
    pass


@register
class Certified:
    name = "certified"
    description = "fixed step 1/L from the certified (Gershgorin) Lipschitz bound, no line search"
    Options = CertifiedOptions

    def needs(self, options: CertifiedOptions) -> Needs:
        return Needs.LIPSCHITZ | SECOND_ORDER

    def solve(self, objective: SolverObjective, x0: np.ndarray, options: CertifiedOptions,
              progress: Progress | None = None) -> SolveResult:
        L = getattr(objective, "lipschitz", None)
        if L is None or not L >= 0 or not np.isfinite(L):
            raise ValueError(f"solver 'certified' needs a finite Lipschitz constant, got {L}")
        t = 1.0 / L if L > 0 else np.inf  # L = 0: F is linear on the box, go to its corner
        margin = 2.0 / L - t if L > 0 else np.inf  # the contraction margin 2/L - t
        run = Run(objective, x0, options, self.name, margin + t, progress)
        lo, hi = objective.lower, objective.upper
        while run.steps < options.max_steps:
            if run.converged:
                if (done := run.done(StopReason.CONVERGED)) is not None:
                    return done
                continue
            step = run.steps + 1
            x_new = np.where(run.g == 0, run.x, np.clip(run.x - t * run.g, lo, hi))
            f_new, fam_new, g_new = objective.energy_and_grad(x_new)
            objective.check_finite(x_new, f_new, g_new, step)
            if f_new > run.f:  # only round-off can do this: keep x
                if (done := run.done(StopReason.STALLED)) is not None:
                    return done
                continue
            if (run.accept(step, x_new, f_new, fam_new, g_new, t, 0, margin)
                    and (done := run.done(StopReason.STALLED)) is not None):
                return done
        return run.done(StopReason.MAX_STEPS) or run.result(run.steps, StopReason.MAX_STEPS)
