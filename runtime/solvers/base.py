"""Solve stage: what every solver shares. The stop reasons, the options every solver
has (step limit and stopping tests), the result, and `Run`: the loop bookkeeping (the
current state, the trace, the stall count, progress reports, the second-order test), so that a solver decides only which step to
take. Every solver starts from a feasible point, only ever accepts a state whose energy is no
higher than the current one, and leaves through `Run.done`, which escapes negative curvature
before it lets a run stop (`curvature.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import numpy as np

from cfc_dsl.runtime.observe.recorder import Recorder
from cfc_dsl.runtime.observe.trace import Trace, delta_f90
from cfc_dsl.runtime.solvers.curvature import SecondOrder, escape, second_order_test
from cfc_dsl.runtime.solvers.registry import Needs, option
from cfc_dsl.runtime.solvers.vectors import clip

# What every solver declares for the shared second-order test: the generated Hessian-vector
# kernels (an objective without them gets central differences of its gradient instead).
SECOND_ORDER = Needs.HVP
MAX_ESCAPES = 100  # negative-curvature escapes per run (each lowers F by more than round-off)

Progress = Callable[[int, float, float], None]  # (step, energy, |projected gradient|)
# a rejected trial: (energy, family energies, step size, its backtrack number, state)
Rejected = Callable[[float, np.ndarray, float, int, np.ndarray], None]


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
class StopOptions:
    """The fields every solver's options share (each solver's dataclass extends this)."""

    max_steps: int = option(1000, "step limit (0 evaluates the initial state only)",
                            lambda v: v >= 0, ">= 0")
    tol: float = option(1e-8, "converged when the projected gradient's max-norm is <= tol",
                        lambda v: v >= 0, "a finite number >= 0")
    ftol: float = option(1e-15, "a relative energy change below ftol counts as no progress",
                         lambda v: v >= 0, "a finite number >= 0")
    stall_steps: int = option(20, "stop as stalled after this many steps without progress",
                              lambda v: v >= 1, ">= 1")
    lanczos_steps: int = option(15, "Lanczos steps of the second-order test at a stopping "
                                "point (0 turns it off)", lambda v: v >= 0, ">= 0")
    curvature_tol: float = option(1e-6, "negative curvature counts when below -curvature_tol "
                                  "x the curvature scale", lambda v: v >= 0,
                                  "a finite number >= 0")


class SolverObjective(Protocol):
    """What the shared loop reads of `cfc_dsl.runtime.objective.Objective`."""

    lower: np.ndarray
    upper: np.ndarray
    family_names: tuple[str, ...]

    def energy(self, x: np.ndarray) -> tuple[float, np.ndarray]: ...

    def energy_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]: ...

    def check_finite(self, x: np.ndarray, energy: float, grad: np.ndarray | None,
                     step: int) -> None: ...


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
    options: Any = None  # the solver's options dataclass, as run
    second_order: SecondOrder | None = None  # the test at the final state (None: not run)
    auto: str | None = None  # set by `auto`: why it chose `solver`
    evaluations: int = 0  # kernel passes (energy, or energy and gradient), the start included

    @property
    def converged(self) -> bool:
        return self.reason is StopReason.CONVERGED

    @property
    def evaluations_per_step(self) -> float:
        """Kernel passes per accepted step, the initial evaluation not counted."""
        return (self.evaluations - 1) / self.steps if self.steps else 0.0

    @property
    def delta_f90(self) -> int:
        return delta_f90(self.trace.energies)


def usable_lipschitz(objective: object) -> float | None:
    """The certified L the problem supplied, when it can bound a step: finite and positive
    (L = 0, F linear on the box, caps nothing); else None, and the solver's own step rule
    decides."""
    L = getattr(objective, "lipschitz", None)
    return L if L and np.isfinite(L) else None


def projected_gradient_norm(x: np.ndarray, g: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    if x.size == 0:
        return 0.0
    # the array methods, not np.max / np.abs: the same reduction without fromnumeric's
    # dispatch, ~3 us of the ~12 us this took per step at N = 10^3 (bench/call_overhead.py)
    return float(np.abs(x - clip(x - g, lo, hi)).max())


class Run:
    """The bookkeeping every solver shares: the current state, the trace, the stall count,
    progress reports and the final result. Solvers decide only which step to take:

        while run.steps < options.max_steps:
            if run.converged and (done := run.done(StopReason.CONVERGED)):
                return done
            ...  # a trial; run.accept(run.steps + 1, ...), or run.done(reason) to stop
        return run.done(StopReason.MAX_STEPS)

    `done` returns None after escaping negative curvature (one accepted step): the solver
    then forgets its step history (`run.escapes` counts them) and carries on."""

    def __init__(self, objective: SolverObjective, x0: np.ndarray, options: StopOptions,
                 solver: str, margin: float | None = None, progress: Progress | None = None):
        self.objective, self.options, self.solver = objective, options, solver
        self.progress = progress
        self.lo, self.hi = objective.lower, objective.upper
        self.x = clip(x0, self.lo, self.hi)
        self._evaluated = int(getattr(objective, "evaluations", 0))  # before this run
        self.f, self.fam, self.g = objective.energy_and_grad(self.x)
        objective.check_finite(self.x, self.f, self.g, 0)
        self.f0 = self.f
        self.pgn = projected_gradient_norm(self.x, self.g, self.lo, self.hi)
        self.margin = margin
        # one StepRecord per step to the trackers: the trace, the progress hook, the user's
        self.recorder = Recorder(objective, progress, ("margin",) if margin is not None else ())
        self.trace: Trace = self.recorder.trace
        self.recorder.record(0, self.x, self.f, self.fam, self.pgn, 0.0, 0, margin=margin)
        self.stalled = 0
        self.steps = 0  # the last accepted step's number
        self.escapes = 0

    @property
    def converged(self) -> bool:
        return self.pgn <= self.options.tol

    def accept(self, step: int, x: np.ndarray, f: float, fam: np.ndarray, g: np.ndarray,
               t: float, backtracks: int, margin: float | None,
               curvature: float | None = None, pgn: float | None = None) -> bool:
        """Move to an accepted state (energy no higher); True when the energy has stalled.
        `pgn`: the state's projected-gradient norm from a caller that computed it with the
        same arithmetic and has checked x, F and g finite (the C loop, cloop.py)."""
        if pgn is None:
            self.objective.check_finite(x, f, g, step)
        small = self.f - f <= self.options.ftol * max(1.0, abs(self.f))
        self.stalled = self.stalled + 1 if small else 0
        self.x, self.f, self.fam, self.g = x, f, fam, g
        self.steps = step
        self.pgn = projected_gradient_norm(x, g, self.lo, self.hi) if pgn is None else pgn
        self.recorder.record(step, x, f, fam, self.pgn, t, backtracks, margin=margin,
                             min_curvature=curvature)
        return self.stalled >= self.options.stall_steps

    def reject(self, step: int, f: float, t: float, backtracks: int,
               fam: np.ndarray | None = None, x: np.ndarray | None = None) -> None:
        """Record a trial the solver turned down (the trace's `accepted` false); the state
        stays where it is. Solvers that report their rejected trials call this."""
        self.recorder.reject(step, f, fam, t, backtracks, x)

    def rejected(self, step: int) -> Rejected | None:
        """A callback for the trials a solver turns down while taking `step`, or None when
        nobody records them (`Observe(rejected=True)`, `cfc run --trace-rejected`)."""
        if not self.recorder.observe.rejected:
            return None
        return lambda f, fam, t, backtracks, x: self.reject(step, f, t, backtracks, fam, x)

    def done(self, reason: StopReason) -> SolveResult | None:
        """Stop for `reason` after the second-order test; or, where it finds negative
        curvature and a step along it lowers F, take that step and return None."""
        if reason is StopReason.MAX_STEPS and not self.converged:
            return self._result(reason, None)
        check = second_order_test(self.objective, self.x, self.g, self.options.tol,
                                  self.options.lanczos_steps, self.options.curvature_tol,
                                  self.f)
        if (check.direction is not None and self.steps < self.options.max_steps
                and self.escapes < MAX_ESCAPES):
            moved = escape(self.objective, self.x, self.f, self.g, check.direction,
                           check.report.min_curvature, getattr(self.options, "armijo_c", 1e-4))
            if moved is not None:
                x, f, fam, g, t, halvings = moved
                self.escapes += 1
                self.accept(self.steps + 1, x, f, fam, g, t, halvings, self.margin,
                            check.report.min_curvature)
                self.stalled = 0
                return None
        if self.converged:
            reason = StopReason.CONVERGED
            if not check.report.passed:  # negative curvature that no step could use
                reason = (StopReason.MAX_STEPS if self.steps >= self.options.max_steps
                          else StopReason.NO_DESCENT)
        return self._result(reason, check.report)

    def result(self, steps: int, reason: StopReason) -> SolveResult:
        """The result without an escape (kept for solvers that stop on their own terms):
        `converged` still needs the second-order test to pass."""
        self.steps = steps
        check = None
        if reason is not StopReason.MAX_STEPS or self.converged:
            check = second_order_test(self.objective, self.x, self.g, self.options.tol,
                                      self.options.lanczos_steps,
                                      self.options.curvature_tol, self.f).report
        if reason is StopReason.MAX_STEPS and self.converged:
            reason = StopReason.CONVERGED
        if reason is StopReason.CONVERGED and check is not None and not check.passed:
            reason = StopReason.NO_DESCENT
        return self._result(reason, check)

    def _result(self, reason: StopReason, check: SecondOrder | None) -> SolveResult:
        evaluations = int(getattr(self.objective, "evaluations", 0)) - self._evaluated
        result = SolveResult(self.x, self.f, self.f0, self.fam, self.steps, reason, self.trace,
                             self.solver, self.options, check, evaluations=evaluations)
        self.recorder.finish(result)
        return result
