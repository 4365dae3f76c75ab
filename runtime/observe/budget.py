"""The research code's RelaxationTracker and EnergyBudgetTracker columns (SEED_SPEC §5.1-5.2)
that are not already trace columns, as one `Tracker`: energy change, compute cost and
redemption gain, monotonicity violations, backtrack totals, per-class energies (summed over
every family of a class, where the research code kept the last), the AGM phase metrics and
uncertainty (§4.1), and a breakdown taken at the relaxed state (the research code's KPIs
were evaluated at the initial one). The mapping of every column is in docs/observability.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cfc_dsl.runtime.observe.records import StepRecord

MONOTONE_SLACK = 1e-12  # E above the previous accepted E by more than this is a violation
AGM_WINDOW = 32  # energies the AGM metrics look back over
ENTROPY_CLAMP = 1e-9


@dataclass(frozen=True)
class EnergyClass:
    """The families that share one energy (`landau`, `quadratic`): `local` when the energy
    takes one variable, `coupling` when it takes several. Its column is `class.KIND.ENERGY`."""

    kind: str
    energy: str
    families: tuple[int, ...]  # indices into the trace's family order

    @property
    def column(self) -> str:
        return f"class.{self.kind}.{self.energy}"


def energy_classes(tables: Sequence[Any]) -> tuple[EnergyClass, ...]:
    """The classes of a bound model's families (`problem.bound.families`: objects with
    `energy` and `slots`), in order of first appearance."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, table in enumerate(tables):
        kind = "local" if len(table.slots) <= 1 else "coupling"
        groups.setdefault((kind, table.energy), []).append(i)
    return tuple(EnergyClass(k, e, tuple(ix)) for (k, e), ix in groups.items())


@dataclass(frozen=True)
class Breakdown:
    """The energy budget at the relaxed state: weighted family and class energies, the
    families' gradient norms (when the run computed them) and the free-energy split
    U = E, S = Σ binary entropy of the state (clamped to [1e-9, 1 - 1e-9]), F = U - T S."""

    energy: float
    families: dict[str, float]
    classes: dict[str, float]
    grad_norms: dict[str, float] | None
    entropy: float
    temperature: float

    @property
    def free_energy(self) -> float:
        return self.energy - self.temperature * self.entropy


def agm_metrics(energies: Sequence[float]) -> dict[str, float]:
    """AGM phase metrics of an energy history (SEED_SPEC §4.1). The `rate` is high when
    consecutive energies are close, at convergence or at a stall: it is not a speed."""
    out = {"agm.rate": 0.0, "agm.variance": 0.0, "agm.trend": 0.0, "agm.oscillation": 0.0}
    e = np.asarray(energies, dtype=np.float64)
    if e.size >= 2:
        r = np.clip(1.0 - np.abs(e[:-1] - e[1:]) / (np.abs(e[:-1]) + np.abs(e[1:]) + 1e-8),
                    0.0, 1.0)
        out["agm.rate"] = float(r.mean())
        out["agm.variance"] = float(r.var()) if r.size > 1 else 0.0
        if r.size >= 5:
            out["agm.trend"] = float(np.polyfit(np.arange(5.0), r[-5:], 1)[0])
        d = np.abs(np.diff(r))
        out["agm.oscillation"] = float(d.var()) if d.size > 1 else 0.0
    epistemic = min(1.0, (1.0 - out["agm.rate"]) + out["agm.oscillation"])
    aleatoric = 0.0  # cfc has no "recent performance" history: the research code's 0 case
    total = epistemic + aleatoric
    out |= {"uncertainty.epistemic": epistemic, "uncertainty.aleatoric": aleatoric,
            "uncertainty.total": total,
            "uncertainty.exploration_boost": 0.05 if total > 1 else -0.02 if total < 0.3
            else 0.0}
    return out


def binary_entropy(x: np.ndarray) -> float:
    p = np.clip(np.asarray(x, dtype=np.float64), ENTROPY_CLAMP, 1.0 - ENTROPY_CLAMP)
    return float(-np.sum(p * np.log(p) + (1.0 - p) * np.log1p(-p)))


@dataclass
class BudgetTracker:
    """One row per accepted record; rejected trials count into the next row's
    `rejected_trials` and `compute_cost`. `margin_warn` (a threshold) adds the column
    `margin_warn` where the solver traces a contraction margin."""

    families: tuple[str, ...]
    classes: tuple[EnergyClass, ...] = ()
    run_id: str = "default"
    margin_warn: float | None = None
    temperature: float = 1.0
    rows: list[dict[str, Any]] = field(default_factory=list)
    breakdown: Breakdown | None = None
    _cost: float = 0.0
    _rejected: int = 0
    _violations: int = 0
    _backtracks: int = 0
    _escapes: int = 0
    _energies: list[float] = field(default_factory=list)
    _last: StepRecord | None = None

    @classmethod
    def for_problem(cls, problem: Any, **options: Any) -> BudgetTracker:
        """A tracker for a bound `Problem`: its family names and energy classes."""
        tables = problem.bound.families
        return cls(tuple(t.name for t in tables), energy_classes(tables), **options)

    def on_step(self, record: StepRecord) -> None:
        self._cost += record.wall_time
        if not record.accepted:
            self._rejected += 1
            return
        previous = self._energies[-1] if self._energies else None
        delta = math.nan if previous is None else record.energy - previous
        cost = self._cost
        violation = int(previous is not None and record.energy > previous + MONOTONE_SLACK)
        self._violations += violation
        self._backtracks += record.backtracks
        extra = dict(record.extra)
        self._escapes += int("min_curvature" in extra)
        self._energies.append(record.energy)
        row: dict[str, Any] = {
            "run_id": self.run_id, "step": record.step, "energy": record.energy,
            "delta_energy": delta, "compute_cost": cost,
            "redemption_gain": -delta / cost if delta < 0 and cost > 0 else math.nan,
            "monotonicity_violation": violation,
            "monotonicity_violation_count": self._violations,
            "last_backtracks": record.backtracks, "total_backtracks": self._backtracks,
            "rejected_trials": self._rejected, "escape_event_count": self._escapes}
        for c in self.classes:
            row[c.column] = math.fsum(record.families[i] for i in c.families)
        row |= agm_metrics(self._energies[-AGM_WINDOW:])
        if self.margin_warn is not None and "margin" in extra:
            row["margin_warn"] = int(extra["margin"] < self.margin_warn)
        self.rows.append(row)
        self._cost, self._rejected, self._last = 0.0, 0, record

    def on_finish(self, result: Any) -> None:
        """The breakdown at the relaxed state `result.x` (not the initial one)."""
        fam = [float(v) for v in result.families]
        grads = self._last.family_grad_norms if self._last is not None else None
        self.breakdown = Breakdown(
            float(result.energy), dict(zip(self.families, fam, strict=True)),
            {c.column: math.fsum(fam[i] for i in c.families) for c in self.classes},
            None if grads is None else dict(zip(self.families, grads, strict=True)),
            binary_entropy(result.x), self.temperature)

    def frame(self):  # type: ignore[no-untyped-def]
        """The rows as a polars DataFrame (columns in the order of the first row)."""
        import polars as pl

        return pl.DataFrame(self.rows, infer_schema_length=None)
