"""Gate metrics (issue 9 item 4), the research code's GatingMetricsLogger aggregates done
right (SEED_SPEC §5.3). A gate is a variable element fed to `gate_benefit`,
`damped_gate_benefit` or `gate_local`; its targets are the other variables it shares a
factor with. Redemption compares the targets after the relaxation with a counterfactual
relaxation of the same model with every gate held closed. Formulas: docs/continuation.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

GATE_ENERGIES = frozenset({"gate_benefit", "damped_gate_benefit", "gate_local"})
OPEN = 0.5  # a gate counts as expanded above this (on its box scaled to [0, 1])
HAZARD_CAP = 1.0 - 1e-12  # lambda = -ln(1 - g) is capped at -ln(1e-12) ~ 27.6 for g = 1


@dataclass(frozen=True)
class GateSites:
    """The gate elements (flat indices) and, for each, the flat indices of its targets."""

    gates: tuple[int, ...]
    targets: tuple[tuple[int, ...], ...]


def gate_sites(bound: Any) -> GateSites:
    """Gates: slot 0 of every gate-energy family. Targets of a gate: the non-gate variables
    of every instance of a non-gate family that touches it."""
    gates = sorted({int(i) for t in bound.families if t.energy in GATE_ENERGIES
                    for i in (t.slots[0] if t.slots else ())})
    gate_set = set(gates)
    targets: dict[int, set[int]] = {g: set() for g in gates}
    for table in bound.families:
        if table.energy in GATE_ENERGIES or len(table.slots) < 2:
            continue
        rows = np.stack(table.slots, axis=1)  # instances x slots
        for row in rows[np.isin(rows, gates).any(axis=1)] if gates else ():
            members = {int(v) for v in row}
            for g in members & gate_set:
                targets[g] |= members - gate_set
    return GateSites(tuple(gates), tuple(tuple(sorted(targets[g])) for g in gates))


@dataclass(frozen=True)
class GateMetrics:
    gates: int  # gate instances
    expansions: int  # gates above OPEN
    expansion_rate: float  # expansions / gates
    redemption: float  # mean over all gates of r_g
    hazard_mean: float  # mean over all gates of -ln(1 - g)
    mu_hat: float | None  # expansions / sum of max(r_g, 0) over expanded gates
    good: int  # expanded and r_g > tol
    bad: int  # expanded and r_g <= tol
    good_bad_ratio: float | None  # good / bad (None when bad = 0)
    per_gate: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def metrics(values: np.ndarray, redemption: np.ndarray, tol: float = 1e-9,
            names: tuple[str, ...] = ()) -> GateMetrics:
    """The aggregates from each gate's opening (scaled to [0, 1]) and redemption r_g."""
    g = np.clip(np.asarray(values, float), 0.0, 1.0)
    r = np.asarray(redemption, float)
    n = int(g.size)
    expanded = g > OPEN
    e = int(expanded.sum())
    hazard = -np.log1p(-np.minimum(g, HAZARD_CAP))
    paid = float(np.maximum(r[expanded], 0.0).sum())
    good = int((expanded & (r > tol)).sum())
    bad = e - good
    per = tuple({"gate": names[k] if names else k, "value": float(g[k]),
                 "hazard": float(hazard[k]), "redemption": float(r[k]),
                 "expanded": bool(expanded[k])} for k in range(n))
    return GateMetrics(n, e, e / n if n else 0.0, float(r.mean()) if n else 0.0,
                       float(hazard.mean()) if n else 0.0,
                       0.0 if e == 0 else (e / paid if paid > 0 else None),
                       good, bad, good / bad if bad else None, per)


def closed_state(relaxation: Any, sites: GateSites) -> np.ndarray:
    """The counterfactual: the same model relaxed from the final state with every gate held
    at its lower bound (the gates' box shrunk to a point; same solver and options)."""
    problem = relaxation.problem
    bound = problem.bound
    idx = np.array(sites.gates, dtype=np.int64)
    upper = bound.upper.copy()
    upper[idx] = bound.lower[idx]
    closed = type(problem)(problem.compiled, dataclasses.replace(bound, upper=upper))
    closed.weights = problem.weights
    result = relaxation.result
    start = np.clip(result.x, closed.lower, closed.upper)
    return closed.solve_once(result.solver, start, result.options).result.x


def gate_metrics(relaxation: Any, tol: float = 1e-9) -> GateMetrics | None:
    """Gate metrics of a finished relaxation (None for a model without gates)."""
    bound = relaxation.problem.bound
    sites = gate_sites(bound)
    if not sites.gates:
        return None
    after = relaxation.result.x
    before = closed_state(relaxation, sites)
    idx = np.array(sites.gates, dtype=np.int64)
    width = bound.upper[idx] - bound.lower[idx]
    values = np.where(width > 0, (after[idx] - bound.lower[idx]) / np.where(width > 0, width, 1),
                      0.0)
    redemption = np.array([float(np.mean(after[list(t)] - before[list(t)])) if t else 0.0
                           for t in sites.targets])
    names = tuple(bound.element(g) for g in sites.gates)
    return metrics(values, redemption, tol, names)
