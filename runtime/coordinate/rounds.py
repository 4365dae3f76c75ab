"""What homotopy and the adapters share: rounds of an inner solver at changed effective
weights. `solve_round` runs any registered solver, warm-started, with the round number on
the trace's `stage` column; `Round` is one round's report; `join` folds the rounds into one
`SolveResult` and a `Coordination`, always with the energy under the user's fixed weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from cfc_dsl.runtime.observe.trace import Trace, delta_f90
from cfc_dsl.runtime.solvers.base import SolveResult


@dataclass(frozen=True)
class Round:
    """One inner-solver round: a homotopy stage or an adapter round."""

    stage: int
    weights: dict[str, float]  # the effective weights the round minimised
    steps: int
    energy: float  # under `weights` (the staged / adapted objective)
    energy_fixed: float  # under the user's own weights, at the same state
    reason: str
    grad_norms: dict[str, float] | None = None  # per family, at the round's end (adapters)
    note: str = ""  # e.g. the homotopy guard's backoff

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stage": self.stage, "weights": dict(self.weights),
                               "steps": self.steps, "energy": self.energy,
                               "energy_fixed": self.energy_fixed, "reason": self.reason}
        if self.grad_norms is not None:
            out["grad_norms"] = dict(self.grad_norms)
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class Coordination:
    """How a coordinated run moved the weights: `kind` "homotopy" or "adapter", the
    adapter's name and options, each round, and the final state's user-weight energy."""

    kind: str
    name: str
    options: Any
    rounds: tuple[Round, ...]
    energy_fixed: float
    backoffs: int = 0  # homotopy: how often the guard lowered the start scale

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name,
                               "options": dataclasses.asdict(self.options)
                               if dataclasses.is_dataclass(self.options) else self.options,
                               "rounds": [r.to_json() for r in self.rounds]}
        if self.kind == "homotopy":
            out["backoffs"] = self.backoffs
        return out


def weights_dict(names: tuple[str, ...], weights: np.ndarray) -> dict[str, float]:
    return {n: float(w) for n, w in zip(names, weights, strict=True)}


def fixed_energy(problem: Any, x: np.ndarray, user: np.ndarray) -> float:
    """F(x) under the user's weights, leaving the problem's live weights as they were."""
    live = problem.weights.copy()
    try:
        problem.weights = user
        return float(problem.energy(x)[0])
    finally:
        problem.weights = live


def solve_round(problem: Any, solver: str, options: Any, x: np.ndarray, stage: int,
                progress: Any) -> Any:
    """One warm-started inner solve at the problem's current weights (a `Relaxation`)."""
    return problem.solve_once(solver, x, options, progress, stage=stage)


@dataclass(frozen=True)
class JoinedResult(SolveResult):
    """A coordinated run's result. Its ΔF90 counts accepted steps over every round, each
    round's start row (the same state at new weights) not counted again; the energies are
    the staged ones, so compare runs on `energy_fixed`, not on ΔF90 alone."""

    round_starts: frozenset[int] = frozenset()  # trace row indices that open a round > 0

    @property
    def delta_f90(self) -> int:
        records = self.trace.records
        return delta_f90([r.energy for i, r in enumerate(records)
                          if r.accepted and i not in self.round_starts])


def join(results: list[SolveResult], energy_initial: float) -> SolveResult:
    """One result from the rounds: the last round's state, energies and stop reason; steps
    summed; a trace of every round in order, steps numbered on from round to round (each
    round's first row is its start under its own weights)."""
    last = results[-1]
    records, offset, starts = [], 0, set()
    for k, r in enumerate(results):
        if k:
            starts.add(len(records))
        records += [dataclasses.replace(rec, step=rec.step + offset) for rec in r.trace.records]
        offset += r.steps
    first = results[0].trace
    trace = Trace(first.families, first.extra, records, first.provenance)
    return JoinedResult(last.x, last.energy, energy_initial, last.families, offset,
                        last.reason, trace, last.solver, last.options, last.second_order,
                        last.auto, frozenset(starts))

