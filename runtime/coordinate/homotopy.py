"""Continuation (homotopy) on effective family weights: a `Schedule` moves one family's
weight from `start` to its final value over `stages` stages (linear or geometric), and
`continuation` runs the inner solver once per stage, warm-started, the last stage on the
user's own weights. Unlike the research code's, a schedule acts on the family's effective
weight whatever the weight map holds, and its backoff guard acts on the same weights.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

import numpy as np

from cfc_dsl.diagnostics import CfcError, ErrorKind, Span
from cfc_dsl.runtime.coordinate.rounds import (
    Coordination,
    Round,
    fixed_energy,
    join,
    solve_round,
    weights_dict,
)
from cfc_dsl.runtime.solvers.registry import option


class Shape(Enum):
    LINEAR = "linear"  # w_k = start + (final - start) k / (stages - 1)
    GEOMETRIC = "geometric"  # w_k = start (final / start)^(k / (stages - 1)); both > 0


@dataclass(frozen=True)
class Schedule:
    """One family's weight per stage: stage 0 has `start`, stage `stages - 1` has `final`
    (None: the user's weight, filled in by `resolve`)."""

    family: str
    start: float
    stages: int
    final: float | None = None
    shape: Shape = Shape.LINEAR

    def weight_at(self, stage: int, scale: float | None = None) -> float:
        """The weight at `stage` (the last and later stages: exactly `final`). `scale`
        replaces start/final (the guard's backed-off start)."""
        final = self.final if self.final is not None else 1.0
        start = self.start if scale is None else scale * final
        if self.stages <= 1 or stage >= self.stages - 1:
            return final
        t = max(stage, 0) / (self.stages - 1)
        if self.shape is Shape.GEOMETRIC:
            return float(start * (final / start) ** t)
        return float(start + (final - start) * t)

    @property
    def scale(self) -> float | None:
        """start / final, the start scale the guard backs off (None when final is 0)."""
        return None if not self.final else self.start / self.final

    def resolve(self, names: tuple[str, ...], user: np.ndarray,
                span: Span | None = None) -> Schedule:
        """This schedule with `final` set to the user's weight, checked against the problem."""
        if self.family not in names:
            import difflib

            close = difflib.get_close_matches(self.family, names, n=1)
            raise CfcError(ErrorKind.ARGUMENT, f"--homotopy: no factor family '{self.family}'",
                           span, (f"did you mean '{close[0]}'? " if close else "")
                           + f"the families: {', '.join(names)}")
        final = float(user[names.index(self.family)]) if self.final is None else self.final
        if self.shape is Shape.GEOMETRIC and not (self.start > 0 and final > 0):
            raise CfcError(ErrorKind.ARGUMENT, f"--homotopy {self.family}: a geometric schedule "
                           f"needs weights > 0 (start {self.start:g}, final {final:g})", span,
                           "make both positive, or drop ':geometric' for a linear ramp")
        return replace(self, final=final)

    @staticmethod
    def parse(text: str, span: Span | None = None) -> Schedule:
        """`chain=0.1:40` or `chain=0.1:40:geometric` (start weight, stages, shape)."""
        hint = "write FAMILY=START:STAGES[:linear|geometric], e.g. --homotopy chain=0.1:40"
        family, sep, rest = text.partition("=")
        parts = rest.split(":")
        if not sep or not family.strip() or len(parts) not in (2, 3):
            raise CfcError(ErrorKind.ARGUMENT, f"--homotopy: cannot read '{text}'", span, hint)
        try:
            start, stages = float(parts[0]), float(parts[1])
            shape = Shape(parts[2].strip().lower()) if len(parts) == 3 else Shape.LINEAR
        except ValueError:
            raise CfcError(ErrorKind.ARGUMENT, f"--homotopy: cannot read '{text}'", span,
                           hint) from None
        if not math.isfinite(start) or not stages.is_integer() or stages < 1:
            raise CfcError(ErrorKind.ARGUMENT, f"--homotopy: '{text}' needs a finite start and "
                           "a whole number of stages >= 1", span, hint)
        return Schedule(family.strip(), start, int(stages), None, shape)


@dataclass(frozen=True)
class HomotopyOptions:
    guard: bool = option(True, "back the start scale off when a stage oscillates")
    backoff: float = option(0.5, "the guard multiplies the start scale by this",
                            lambda v: 0 < v < 1, "in (0, 1)")
    min_start_scale: float = option(0.05, "the guard never lowers start/final below this",
                                    lambda v: v >= 0, ">= 0")
    tol: float = option(1e-9, "a stage oscillates when its energy under the final weights "
                        "rises by more than tol x max(1, |F|)", lambda v: v >= 0, ">= 0")


def model_schedules(problem: Any) -> list[Schedule]:
    """The schedules of the model's `weight f = v from s over n [geometric]` lines."""
    out = []
    for table in problem.bound.families:
        bound = getattr(table, "schedule", None)
        if bound is not None:
            out.append(Schedule(table.name, float(bound.start), int(bound.stages),
                                float(bound.end), Shape(bound.shape.value)))
    return out


def continuation(problem: Any, solver: str, x0: np.ndarray, options: Any, progress: Any,
                 schedules: Sequence[Schedule],
                 homotopy_options: HomotopyOptions | None = None) -> Any:
    """Relax stage by stage; the last stage has the user's weights. Returns a
    `Relaxation` whose `coordination` lists every stage."""
    hopts = homotopy_options or HomotopyOptions()
    names = problem.family_names
    user = problem.weights.copy()
    scheds = [s.resolve(names, user) for s in schedules]
    scales = [s.scale for s in scheds]
    stages = max(s.stages for s in scheds)
    x = np.asarray(x0, dtype=np.float64)
    results, rounds, backoffs, relaxation = [], [], 0, None
    previous_fixed = fixed_energy(problem, np.clip(x, problem.lower, problem.upper), user)
    energy_initial = previous_fixed
    try:
        for k in range(stages):
            w = user.copy()
            for s, scale in zip(scheds, scales, strict=True):
                w[names.index(s.family)] = s.weight_at(k, scale)
            problem.weights = w
            relaxation = solve_round(problem, solver, options, x, k, progress)
            result = relaxation.result
            fixed = fixed_energy(problem, result.x, user)
            note = ""
            rises = fixed > previous_fixed + hopts.tol * max(1.0, abs(previous_fixed))
            if hopts.guard and rises and k < stages - 1:
                lowered = [None if sc is None else max(hopts.min_start_scale, sc * hopts.backoff)
                           for sc in scales]
                if lowered != scales:
                    backoffs += 1
                    note = ("oscillation: start scale backed off to "
                            + ", ".join(f"{s.family} {sc:g}" for s, sc in
                                        zip(scheds, lowered, strict=True) if sc is not None))
                    scales = lowered
            rounds.append(Round(k, weights_dict(names, w), result.steps, result.energy, fixed,
                                result.reason.value, note=note))
            results.append(result)
            x, previous_fixed = result.x, fixed
    finally:
        problem.weights = user
    coordination = Coordination("homotopy", "homotopy", hopts, tuple(rounds), previous_fixed,
                                backoffs)
    # the last stage's Relaxation (its L is the one at the user's weights), over every stage
    return dataclasses.replace(relaxation, result=join(results, energy_initial),
                               coordination=coordination)
