"""Builds the `StepRecord`s of a run and hands them to its trackers: the shared `Run` loop
(`runtime/solvers/base.py`) calls `record` for each accepted step, `reject` for a trial a
solver turned down, and `finish` with the result. It measures what the solver does not
pass: wall time and evaluations since the last record, ‖x+ − x‖, variable statistics,
per-family gradient norms (when asked), live weights and a homotopy stage.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from cfc_dsl.runtime.observe.records import StepRecord, VariableStats, as_observe
from cfc_dsl.runtime.observe.trace import Trace
from cfc_dsl.runtime.solvers.vectors import norm


class Recorder:
    def __init__(self, objective: Any, progress: Any, extra: tuple[str, ...] = ()):
        self.objective = objective
        self.observe = as_observe(progress)
        self.trace = Trace(tuple(objective.family_names), extra)
        self.trackers = (self.trace, *self.observe.trackers)
        self._clock = time.perf_counter()
        self._evaluations = 0  # the first record counts the initial evaluation
        self._x: np.ndarray | None = None

    def _count(self) -> int:
        return int(getattr(self.objective, "evaluations", 0))

    def _since(self) -> tuple[float, int]:
        now, count = time.perf_counter(), self._count()
        out = (now - self._clock, count - self._evaluations)
        self._clock, self._evaluations = now, count
        return out

    def _extra(self, named: dict[str, float | None]) -> tuple[tuple[str, float], ...]:
        out = [(k, float(v)) for k, v in named.items() if v is not None]
        stage = getattr(self.objective, "stage", None)
        if stage is not None:
            out.append(("stage", float(stage)))
        weights = getattr(self.objective, "weights", None)
        if weights is not None:
            out += [(f"weight.{f}", float(w))
                    for f, w in zip(self.objective.family_names, weights, strict=False)]
        return tuple(out)

    def record(self, step: int, x: np.ndarray, f: float, fam: np.ndarray, pgn: float,
               t: float, backtracks: int, **extra: float | None) -> None:
        """An accepted state (step 0: the initial one)."""
        wall, evaluations = self._since()
        length = 0.0 if self._x is None else norm(x - self._x)
        self._x = np.array(x, copy=True)
        observe = self.observe
        grads = None
        backend = getattr(self.objective, "backend", None)
        if observe.family_grads and hasattr(backend, "family_grads"):
            from cfc_dsl.runtime.objective import family_grad_norms

            rows = backend.family_grads(x, self.objective.weights)[2]
            grads = tuple(float(v) for v in family_grad_norms(np.atleast_2d(rows)))
        stats = tuple(VariableStats(v.name, *_stats(x[v.offset:v.offset + v.size]))
                      for v in observe.variables)
        values = tuple((c, float(x[i])) for tv in observe.trace_vars
                       for i, c in zip(tv.indices, tv.columns, strict=True))
        self._emit(StepRecord(int(step), float(f), tuple(float(v) for v in fam), float(pgn),
                              float(t), length, int(backtracks), True, wall, evaluations,
                              grads, stats, values, self._extra(extra)))

    def reject(self, step: int, f: float, fam: np.ndarray | None, t: float, backtracks: int,
               x: np.ndarray | None = None, **extra: float | None) -> None:
        """A trial the solver turned down: its energy, step and (when given) its state;
        gradient columns repeat the current state's, variable columns the current state's."""
        wall, evaluations = self._since()
        last = self.trace.records[-1]
        length = 0.0 if x is None or self._x is None else norm(x - self._x)
        families = last.families if fam is None else tuple(float(v) for v in fam)
        self._emit(StepRecord(int(step), float(f), families, last.grad_norm, float(t), length,
                              int(backtracks), False, wall, evaluations,
                              last.family_grad_norms, last.variables, last.values,
                              self._extra(extra)))

    def _emit(self, record: StepRecord) -> None:
        for tracker in self.trackers:
            tracker.on_step(record)

    def finish(self, result: Any) -> None:
        for tracker in self.trackers:
            tracker.on_finish(result)


def _stats(values: np.ndarray) -> tuple[float, float, float]:
    if values.size == 0:
        return (float("nan"),) * 3
    return float(values.min()), float(values.mean()), float(values.max())
