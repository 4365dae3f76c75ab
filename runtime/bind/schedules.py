"""Bind stage for a family's continuation schedule and expansion gate: expressions -> numbers.

`weight f = 1.0 from 0.1 over 40 geometric` and `factor f = e(...) gated cost 0.05` are
runtime data. Binding evaluates their expressions over the params (after `--set`) and checks
them, pointing at the source; the results sit on `FamilyTable.schedule` / `.gate`, where the
homotopy driver and the expansion runtime read them. Nothing here reaches the kernels.
"""

from __future__ import annotations

import math

import numpy as np

from cfc_dsl import syntax as ast
from cfc_dsl.frozen import frozen
from cfc_dsl.model import FactorFamily, ScheduleShape
from cfc_dsl.runtime.bind.evaluate import Env, evaluate
from cfc_dsl.runtime.bind.inputs import bind_error


@frozen
class BoundSchedule:
    """A family's weight per stage: stage 0 has `start`, stage `stages - 1` has `end` (the
    family's bound weight, after any `--set weight.F=...`)."""

    start: float
    end: float
    stages: int
    shape: ScheduleShape

    def weight_at(self, stage: int) -> float:
        """The weight at `stage` (clamped to [0, stages - 1]); the last stage is exactly `end`."""
        if self.stages <= 1 or stage >= self.stages - 1:
            return self.end
        t = max(stage, 0) / (self.stages - 1)
        if self.shape is ScheduleShape.GEOMETRIC:
            return float(self.start * (self.end / self.start) ** t)
        return float(self.start + (self.end - self.start) * t)

    def weights(self) -> np.ndarray:
        """Every stage's weight, in order (length `stages`)."""
        return np.array([self.weight_at(k) for k in range(self.stages)], dtype=np.float64)


@frozen
class BoundGate:
    """A gated family's admission cost (per family, or per instance when `per_instance`)."""

    cost: float
    per_instance: bool


def _scalar(expr: ast.Expr, env: Env, what: str) -> float:
    value = float(np.asarray(evaluate(expr, Env(env.scalars, env.arrays))))
    if not math.isfinite(value):
        raise bind_error(f"{what} is {value:g}, not a finite number", expr.span,
                         "give it a finite value")
    return value


def bind_schedule(family: FactorFamily, env: Env, end: float) -> BoundSchedule | None:
    """The family's schedule with `start` evaluated, ending at its bound weight `end`."""
    spec = family.schedule
    if spec is None:
        return None
    start = _scalar(spec.start, env, f"the start weight of '{family.name}'")
    if spec.shape is ScheduleShape.GEOMETRIC and not (start > 0 and end > 0):
        bad, value = (spec.start, start) if not start > 0 else (family.weight, end)
        which = "start" if bad is spec.start else "final"
        raise bind_error(f"a geometric schedule needs weights > 0, but the {which} weight of "
                         f"'{family.name}' is {value:g}", bad.span,
                         "make both weights positive, or drop 'geometric' for a linear ramp")
    return BoundSchedule(start, end, spec.stages, spec.shape)


def bind_gate(family: FactorFamily, env: Env) -> BoundGate | None:
    """The family's gate with its cost evaluated (a cost must be finite and >= 0)."""
    spec = family.gate
    if spec is None:
        return None
    cost = _scalar(spec.cost, env, f"the gate cost of '{family.name}'")
    if cost < 0:
        raise bind_error(f"the gate cost of '{family.name}' is {cost:g}, below 0", spec.cost.span,
                         "a cost is what admitting the family must pay for: give 0 or more")
    return BoundGate(cost, spec.per_instance)
