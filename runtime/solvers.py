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
            x_new, t_used, backtracks, f_new, fam, g_new = accepted
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
            if options.progress is not None:
                options.progress(step, f, pgn)
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
        lo, hi = objective.lower, objective.upper
        t = 1.0 / L if L > 0 else np.inf  # L = 0: F is linear on the box, go to its corner
        x = np.clip(x0, lo, hi)
        f, fam, g = objective.energy_and_grad(x)
        objective.check_finite(x, f, g, 0)
        f0, pgn = f, projected_gradient_norm(x, g, lo, hi)
        trace = Trace(objective.family_names, ("margin",))
        margin = 2.0 / L - t if L > 0 else np.inf  # the contraction margin 2/L - t
        trace.add(0, f, fam, pgn, 0.0, 0, True, margin + t)
        reason, stalled, step = StopReason.MAX_STEPS, 0, 0
        for step in range(1, options.max_steps + 1):
            if pgn <= options.tol:
                reason, step = StopReason.CONVERGED, step - 1
                break
            x_new = np.where(g == 0, x, np.clip(x - t * g, lo, hi))
            f_new, fam_new, g_new = objective.energy_and_grad(x_new)
            objective.check_finite(x_new, f_new, g_new, step)
            if f_new > f:  # only round-off can do this: keep x
                reason, step = StopReason.STALLED, step - 1
                break
            stalled = stalled + 1 if f - f_new <= options.ftol * max(1.0, abs(f)) else 0
            x, f, fam, g = x_new, f_new, fam_new, g_new
            pgn = projected_gradient_norm(x, g, lo, hi)
            trace.add(step, f, fam, pgn, t, 0, True, margin)
            if options.progress is not None:
                options.progress(step, f, pgn)
            if stalled >= options.stall_steps:
                reason = StopReason.STALLED
                break
        else:
            if pgn <= options.tol:
                reason = StopReason.CONVERGED
        return SolveResult(x, f, f0, fam, step, reason, trace, self.name)


SOLVERS: dict[str, Callable[[], Solver]] = {"pgd": ProjectedGradient, "certified": Certified}
