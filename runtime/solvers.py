"""Solve stage: solvers behind one protocol, and the result they return.

Every solver starts from a feasible point, only ever accepts a state whose energy is no
higher than the current one, and stops with a `StopReason`. `pgd` is projected gradient
with a Barzilai-Borwein trial step and Armijo backtracking on the projected step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import numpy as np

from runtime.trace import Trace, delta_f90


class StopReason(Enum):
    CONVERGED = "converged"
    STALLED = "stalled"
    MAX_STEPS = "max_steps"
    NO_DESCENT = "no_descent"

    def describe(self, tol: float) -> str:
        return {
            StopReason.CONVERGED: f"projected gradient norm <= {tol:g}",
            StopReason.STALLED: "the energy stopped decreasing (relative change below ftol)",
            StopReason.MAX_STEPS: "reached the step limit before converging",
            StopReason.NO_DESCENT: "no trial step lowered the energy; stayed at the last state",
        }[self]


@dataclass(frozen=True)
class SolveOptions:
    max_steps: int = 1000
    tol: float = 1e-8  # on the projected gradient, infinity norm
    ftol: float = 1e-15  # relative energy change counted as no progress
    stall_steps: int = 20
    armijo_c: float = 1e-4
    shrink: float = 0.5
    max_backtracks: int = 60
    lipschitz: float | None = None  # a certified L lets pgd cap its steps at 1/L...2/L


class Objective(Protocol):
    """What a solver needs from a bound problem."""

    lower: np.ndarray
    upper: np.ndarray
    family_names: tuple[str, ...]

    def energy(self, x: np.ndarray) -> tuple[float, np.ndarray]: ...

    def energy_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]: ...

    def check_finite(self, x: np.ndarray, energy: float, grad: np.ndarray | None, step: int) -> None: ...


@dataclass(frozen=True)
class SolveResult:
    x: np.ndarray
    energy: float
    energy_initial: float
    families: np.ndarray
    steps: int
    reason: StopReason
    trace: Trace
    solver: str

    @property
    def converged(self) -> bool:
        return self.reason is StopReason.CONVERGED

    @property
    def delta_f90(self) -> int:
        return delta_f90(self.trace.energies)


class Solver(Protocol):
    name: str

    def solve(self, objective: Objective, x0: np.ndarray, options: SolveOptions) -> SolveResult: ...


def projected_gradient_norm(x: np.ndarray, g: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - np.clip(x - g, lo, hi))))


class ProjectedGradient:
    """`pgd`: x+ = P(x - t g), t from Barzilai-Borwein, halved until Armijo holds on x+ - x."""

    name = "pgd"

    def solve(self, objective: Objective, x0: np.ndarray, options: SolveOptions) -> SolveResult:
        lo, hi = objective.lower, objective.upper
        x = np.clip(x0, lo, hi)
        f, fam, g = objective.energy_and_grad(x)
        objective.check_finite(x, f, g, 0)
        f0 = f
        extra = ("margin",) if options.lipschitz else ()
        trace = Trace(objective.family_names, extra)
        pgn = projected_gradient_norm(x, g, lo, hi)
        margin = (2.0 / options.lipschitz,) if options.lipschitz else ()
        trace.add(0, f, fam, pgn, 0.0, 0, True, *margin)
        t = self._first_step(g, options)
        reason = StopReason.MAX_STEPS
        stalled = 0
        step = 0
        for step in range(1, options.max_steps + 1):
            if pgn <= options.tol:
                reason, step = StopReason.CONVERGED, step - 1
                break
            accepted = self._line_search(objective, x, f, g, t, options)
            if accepted is None:
                reason, step = StopReason.NO_DESCENT, step - 1
                break
            x_new, t_used, backtracks = accepted
            f_new, fam, g_new = objective.energy_and_grad(x_new)
            objective.check_finite(x_new, f_new, g_new, step)
            s, y = x_new - x, g_new - g
            sy = float(s @ y)
            t = float(s @ s) / sy if sy > 0 else t_used * 4.0
            if options.lipschitz:
                t = min(t, 2.0 / options.lipschitz)
            stalled = stalled + 1 if f - f_new <= options.ftol * max(1.0, abs(f)) else 0
            x, f, g = x_new, f_new, g_new
            pgn = projected_gradient_norm(x, g, lo, hi)
            margin = (2.0 / options.lipschitz - t_used,) if options.lipschitz else ()
            trace.add(step, f, fam, pgn, t_used, backtracks, True, *margin)
            if stalled >= options.stall_steps:
                reason = StopReason.STALLED
                break
        else:
            if pgn <= options.tol:
                reason = StopReason.CONVERGED
        return SolveResult(x, f, f0, fam, step, reason, trace, self.name)

    @staticmethod
    def _first_step(g: np.ndarray, options: SolveOptions) -> float:
        if options.lipschitz:
            return 1.0 / options.lipschitz
        scale = float(np.max(np.abs(g))) if g.size else 0.0
        return 1.0 if scale <= 1.0 else 1.0 / scale

    @staticmethod
    def _line_search(objective: Objective, x: np.ndarray, f: float, g: np.ndarray, t: float,
                     options: SolveOptions) -> tuple[np.ndarray, float, int] | None:
        lo, hi = objective.lower, objective.upper
        for backtracks in range(options.max_backtracks + 1):
            trial = np.clip(x - t * g, lo, hi)
            d = trial - x
            decrease = float(g @ d)
            if decrease >= 0.0:  # the projected step vanished: nothing left to gain along -g
                return None
            f_trial, _ = objective.energy(trial)
            if np.isfinite(f_trial) and f_trial <= f + options.armijo_c * decrease:
                return trial, t, backtracks
            t *= options.shrink
        return None


SOLVERS: dict[str, Callable[[], Solver]] = {"pgd": ProjectedGradient}
