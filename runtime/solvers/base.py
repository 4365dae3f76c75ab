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

from cfc_dsl.runtime.observe.trace import Trace, delta_f90


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
    progress: Callable[[int, float, float], None] | None = None  # (step, energy, |pg|)


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


class _Run:
    """The bookkeeping every solver shares: the current state, the trace, the stall count,
    progress reports and the final result. Solvers decide only which step to take."""

    def __init__(self, objective: Objective, x0: np.ndarray, options: SolveOptions,
                 margin: float | None):
        self.objective, self.options = objective, options
        self.lo, self.hi = objective.lower, objective.upper
        self.x = np.clip(x0, self.lo, self.hi)
        self.f, self.fam, self.g = objective.energy_and_grad(self.x)
        objective.check_finite(self.x, self.f, self.g, 0)
        self.f0 = self.f
        self.pgn = projected_gradient_norm(self.x, self.g, self.lo, self.hi)
        self.trace = Trace(objective.family_names, ("margin",) if margin is not None else ())
        self.trace.add(0, self.f, self.fam, self.pgn, 0.0, 0, True,
                       *(() if margin is None else (margin,)))
        self.stalled = 0

    @property
    def converged(self) -> bool:
        return self.pgn <= self.options.tol

    def accept(self, step: int, x: np.ndarray, f: float, fam: np.ndarray, g: np.ndarray,
               t: float, backtracks: int, margin: float | None) -> bool:
        """Move to an accepted state (energy no higher); True when the energy has stalled."""
        self.objective.check_finite(x, f, g, step)
        small = self.f - f <= self.options.ftol * max(1.0, abs(self.f))
        self.stalled = self.stalled + 1 if small else 0
        self.x, self.f, self.fam, self.g = x, f, fam, g
        self.pgn = projected_gradient_norm(x, g, self.lo, self.hi)
        self.trace.add(step, f, fam, self.pgn, t, backtracks, True,
                       *(() if margin is None else (margin,)))
        if self.options.progress is not None:
            self.options.progress(step, f, self.pgn)
        return self.stalled >= self.options.stall_steps

    def result(self, steps: int, reason: StopReason, solver: str) -> SolveResult:
        if reason is StopReason.MAX_STEPS and self.converged:
            reason = StopReason.CONVERGED
        return SolveResult(self.x, self.f, self.f0, self.fam, steps, reason, self.trace, solver)


class ProjectedGradient:
    """`pgd`: x+ = P(x - t g), t from Barzilai-Borwein, halved until Armijo holds on x+ - x."""

    name = "pgd"

    def solve(self, objective: Objective, x0: np.ndarray, options: SolveOptions) -> SolveResult:
        L = options.lipschitz
        run = _Run(objective, x0, options, 2.0 / L if L else None)
        t = self._first_step(run.g, options)
        for step in range(1, options.max_steps + 1):
            if run.converged:
                return run.result(step - 1, StopReason.CONVERGED, self.name)
            accepted = self._line_search(objective, run.x, run.f, run.g, t, options)
            if accepted is None:
                return run.result(step - 1, StopReason.NO_DESCENT, self.name)
            x_new, t_used, backtracks, f_new, fam, g_new = accepted
            s, y = x_new - run.x, g_new - run.g
            sy = float(s @ y)
            t = float(s @ s) / sy if sy > 0 else t_used * 4.0
            if L:
                t = min(t, 2.0 / L)
            if run.accept(step, x_new, f_new, fam, g_new, t_used, backtracks,
                          2.0 / L - t_used if L else None):
                return run.result(step, StopReason.STALLED, self.name)
        return run.result(options.max_steps, StopReason.MAX_STEPS, self.name)

    @staticmethod
    def _first_step(g: np.ndarray, options: SolveOptions) -> float:
        if options.lipschitz:
            return 1.0 / options.lipschitz
        scale = float(np.max(np.abs(g))) if g.size else 0.0
        return 1.0 if scale <= 1.0 else 1.0 / scale

    @staticmethod
    def _line_search(objective: Objective, x: np.ndarray, f: float, g: np.ndarray, t: float,
                     options: SolveOptions
                     ) -> tuple[np.ndarray, float, int, float, np.ndarray, np.ndarray] | None:
        """The accepted trial with its energy, family energies and gradient, or None."""
        lo, hi = objective.lower, objective.upper
        for backtracks in range(options.max_backtracks + 1):
            trial = np.clip(x - t * g, lo, hi)
            d = trial - x
            decrease = float(g @ d)
            if decrease >= 0.0:  # the projected step vanished: nothing left to gain along -g
                return None
            bound = f + options.armijo_c * decrease
            f_trial, _ = objective.energy(trial)
            if np.isfinite(f_trial) and f_trial <= bound:
                # The energy recorded for x+ comes from the energy-and-gradient kernels, which
                # may round differently from the energy-only ones (or, summed in parallel, not
                # repeat to the last bit): Armijo must hold for that value too, or the recorded
                # energy could rise by an ulp. A non-finite value goes on to check_finite.
                f_new, fam, g_new = objective.energy_and_grad(trial)
                if not np.isfinite(f_new) or f_new <= bound:
                    return trial, t, backtracks, f_new, fam, g_new
            t *= options.shrink
        return None


class Certified:
    """`certified`: x+ = P(x - g/L) with a certified L (runtime/lipschitz_global.py), no line
    search. The descent lemma gives F(x+) <= F(x) - (L/2)|x+ - x|^2; a step that still reads
    higher (round-off near the minimum) is not taken, and the run stops as stalled."""

    name = "certified"

    def solve(self, objective: Objective, x0: np.ndarray, options: SolveOptions) -> SolveResult:
        L = options.lipschitz
        if L is None or not L >= 0 or not np.isfinite(L):
            raise ValueError(f"solver 'certified' needs a finite Lipschitz constant, got {L}")
        t = 1.0 / L if L > 0 else np.inf  # L = 0: F is linear on the box, go to its corner
        margin = 2.0 / L - t if L > 0 else np.inf  # the contraction margin 2/L - t
        run = _Run(objective, x0, options, margin + t)
        lo, hi = objective.lower, objective.upper
        for step in range(1, options.max_steps + 1):
            if run.converged:
                return run.result(step - 1, StopReason.CONVERGED, self.name)
            x_new = np.where(run.g == 0, run.x, np.clip(run.x - t * run.g, lo, hi))
            f_new, fam_new, g_new = objective.energy_and_grad(x_new)
            objective.check_finite(x_new, f_new, g_new, step)
            if f_new > run.f:  # only round-off can do this: keep x
                return run.result(step - 1, StopReason.STALLED, self.name)
            if run.accept(step, x_new, f_new, fam_new, g_new, t, 0, margin):
                return run.result(step, StopReason.STALLED, self.name)
        return run.result(options.max_steps, StopReason.MAX_STEPS, self.name)


SOLVERS: dict[str, Callable[[], Solver]] = {"pgd": ProjectedGradient, "certified": Certified}
