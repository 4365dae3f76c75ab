"""Energy-gated expansion (issue 9 item 3): a gated family (`gated cost c`) or each of its
instances (`gated per instance cost c`) joins the objective only when the energy it saves
pays for it. Relax without the gated families; for each candidate predict ΔF to first order,
confirm it by relaxing with the candidate admitted, and admit iff ΔF < -tau - gamma * n.
Whole families are switched by their runtime weight; instances by a filtered table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.runtime.solvers.registry import option


@dataclass(frozen=True)
class GateSpec:
    """A Python-level gate (what `gated [per instance] cost c` binds to): the cost is per
    instance, so a whole family pays `cost * instances`."""

    cost: float
    per_instance: bool = False


@dataclass(frozen=True)
class ExpansionOptions:
    tau: float = option(0.0, "a candidate must save more than tau (plus its cost)",
                        lambda v: v >= 0, ">= 0")
    gamma: float | None = option(None, "the cost per instance for every gated family "
                                 "(None: each family's declared cost)",
                                 lambda v: v is None or v >= 0, ">= 0")
    step: float = option(0.1, "the first-order prediction's bound on each variable's move",
                         lambda v: v > 0, "> 0")


@dataclass(frozen=True)
class Decision:
    """One admission test. dF = F(relaxed with the candidate) - F(relaxed without), on the
    objective that includes the candidate's energy; admitted iff dF < threshold."""

    family: str
    instance: int | None  # None: the whole family
    dF_predicted: float
    dF: float
    threshold: float
    verdict: str  # "admitted" or "rejected"

    @property
    def admitted(self) -> bool:
        return self.verdict == "admitted"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Expansion:
    """How a gated run ended: every decision in order, what was admitted (family -> True /
    False, or its admitted instance numbers) and the final energy on the admitted model."""

    options: ExpansionOptions
    decisions: tuple[Decision, ...]
    admitted: Mapping[str, bool | tuple[int, ...]]
    energy_fixed: float
    kind: str = "expansion"

    def to_json(self) -> dict[str, Any]:
        return {"options": dataclasses.asdict(self.options),
                "decisions": [d.to_json() for d in self.decisions],
                "admitted": {k: v if isinstance(v, bool) else list(v)
                             for k, v in self.admitted.items()}}


def gate_specs(problem: Any, gates: Mapping[str, GateSpec | float] | None = None
               ) -> dict[str, GateSpec]:
    """The gated families: the model's `gated` clauses, then `gates` (name -> GateSpec or a
    per-family cost) added or overriding, checked against the family names."""
    out = {t.name: GateSpec(t.gate.cost, t.gate.per_instance)
           for t in problem.bound.families if getattr(t, "gate", None) is not None}
    for name, spec in (gates or {}).items():
        if name not in problem.family_names:
            raise CfcError(ErrorKind.ARGUMENT, f"gates: no factor family '{name}'", None,
                           f"the families: {', '.join(problem.family_names)}")
        out[name] = spec if isinstance(spec, GateSpec) else GateSpec(float(spec))
    return out


def as_options(value: Any) -> ExpansionOptions:
    if value is None or value is True:
        return ExpansionOptions()
    if isinstance(value, ExpansionOptions):
        return value
    fields = {f.name: f for f in dataclasses.fields(ExpansionOptions)}
    for key, v in dict(value).items():
        check = fields[key].metadata["check"] if key in fields else None
        if check is None or not check(v):
            raise CfcError(ErrorKind.ARGUMENT, f"expansion option {key}={v!r} is not valid",
                           None, "the options: tau >= 0, gamma >= 0 (or None), step > 0")
    return ExpansionOptions(**dict(value))


class _State:
    """The admitted model so far: per-family weights, per-instance masks, a relaxed point."""

    def __init__(self, problem: Any, specs: dict[str, GateSpec]):
        self.root, self.specs = problem, specs
        self.user = problem.weights.copy()
        self.weights = self.user.copy()
        self.masks = {}
        for i, name in enumerate(problem.family_names):
            if name in specs and specs[name].per_instance:
                self.masks[name] = np.zeros(problem.bound.families[i].size, bool)
            elif name in specs:
                self.weights[i] = 0.0

    def problem(self, weights: np.ndarray, masks: Mapping[str, np.ndarray]) -> Any:
        """A problem on the same kernels with per-instance families cut to their masks."""
        bound = self.root.bound
        tables = tuple(_filtered(t, masks[t.name]) if t.name in masks else t
                       for t in bound.families)
        out = type(self.root)(self.root.compiled, dataclasses.replace(bound, families=tables))
        out.weights = weights
        return out


def _filtered(table: Any, mask: np.ndarray) -> Any:
    return dataclasses.replace(
        table, slots=tuple(np.ascontiguousarray(s[mask]) for s in table.slots),
        params=tuple(np.ascontiguousarray(p[mask]) for p in table.params),
        loops={k: np.asarray(v)[mask] for k, v in table.loops.items()})


def predicted_dF(problem: Any, x: np.ndarray, f_without: float, variables: np.ndarray,
                 step: float) -> float:
    """First order at the relaxed state x: the candidate's energy there, plus the linear
    decrease sum_i min g_i d_i over its variables' moves d_i in the box, |d_i| <= step
    (g: the gradient of the objective with the candidate)."""
    f_with, _, g = problem.energy_and_grad(x)
    lo = np.maximum(problem.lower[variables] - x[variables], -step)
    hi = np.minimum(problem.upper[variables] - x[variables], step)
    gv = g[variables]
    return float(f_with - f_without + np.minimum(gv * lo, gv * hi).sum())


def _variables(table: Any, instances: np.ndarray | None = None) -> np.ndarray:
    slots = [s if instances is None else s[instances] for s in table.slots]
    return np.unique(np.concatenate(slots)) if slots else np.zeros(0, np.int64)


def expand(problem: Any, solver: str, x0: np.ndarray, options: Any, progress: Any,
           gates: Mapping[str, GateSpec | float] | None = None, expansion: Any = None,
           homotopy: Any = None, adapter: str | None = None) -> Any:
    """Relax with gated expansion; a `Relaxation` on the admitted model whose
    `coordination` is the `Expansion` (the decision log). (The Problem and Relaxation
    classes come from the objects at hand: importing runtime/problem.py would be a cycle.)"""
    if homotopy or adapter:
        raise CfcError(ErrorKind.ARGUMENT, "gated expansion cannot run with homotopy or a "
                       "weight adapter yet", None, "drop --homotopy / --adapter, or relax "
                       "with expansion=False to keep every gated family")

    opts = as_options(expansion)
    specs = gate_specs(problem, gates)
    state = _State(problem, specs)
    current = state.problem(state.weights, state.masks)
    base = current.solve_once(solver, x0, options, progress, stage=0)
    rounds: list[tuple[Any, bool]] = [(base.result, True)]
    x, f, lipschitz = base.result.x, base.result.energy, base.lipschitz
    decisions: list[Decision] = []

    def trial(name: str, instance: int | None, weights: np.ndarray,
              masks: dict[str, np.ndarray], variables: np.ndarray, count: int) -> bool:
        nonlocal current, x, f, lipschitz
        spec = specs[name]
        gamma = spec.cost if opts.gamma is None else opts.gamma
        threshold = -opts.tau - gamma * count
        candidate = state.problem(weights, masks)
        predicted = predicted_dF(candidate, x, f, variables, opts.step)
        relaxed = candidate.solve_once(solver, x, options, progress, stage=len(decisions) + 1)
        dF = relaxed.result.energy - f
        admitted = bool(dF < threshold)
        decisions.append(Decision(name, instance, predicted, float(dF), float(threshold),
                                  "admitted" if admitted else "rejected"))
        rounds.append((relaxed.result, admitted))
        if admitted:
            current, x, f, lipschitz = candidate, relaxed.result.x, relaxed.result.energy, \
                relaxed.lipschitz
        return admitted

    for i, table in enumerate(problem.bound.families):
        name = table.name
        if name not in specs:
            continue
        if not specs[name].per_instance:
            w = state.weights.copy()
            w[i] = state.user[i]
            if trial(name, None, w, state.masks, _variables(table), table.size):
                state.weights = w
            continue
        # instances in order of their predicted saving at the relaxed base state
        order = sorted(range(table.size), key=lambda k: (_predict_one(state, i, k, x, f,
                                                                      opts.step), k))
        for k in order:
            masks = {**state.masks, name: state.masks[name].copy()}
            masks[name][k] = True
            if trial(name, k, state.weights, masks, _variables(table, np.array([k])), 1):
                state.masks = masks
    admitted = {n: (tuple(int(k) for k in np.flatnonzero(state.masks[n])) if n in state.masks
                    else bool(state.weights[problem.family_names.index(n)] != 0))
                for n in specs}
    record = Expansion(opts, tuple(decisions), admitted, float(f))
    return type(base)(current, _join(rounds, base.result.energy_initial), lipschitz, record)


def _predict_one(state: _State, i: int, k: int, x: np.ndarray, f: float, step: float) -> float:
    table = state.root.bound.families[i]
    masks = {**state.masks, table.name: state.masks[table.name].copy()}
    masks[table.name][k] = True
    return predicted_dF(state.problem(state.weights, masks), x, f,
                        _variables(table, np.array([k])), step)


def _join(rounds: list[tuple[Any, bool]], energy_initial: float) -> Any:
    """One result: the admitted path's last state; every round's rows in order (a rejected
    trial's rows with `accepted` false, so ΔF90 follows the admitted path); steps summed."""
    from cfc_dsl.runtime.observe.trace import Trace
    from cfc_dsl.runtime.solvers.base import SolveResult

    records, offset = [], 0
    for result, admitted in rounds:
        records += [dataclasses.replace(r, step=r.step + offset,
                                        accepted=r.accepted and admitted)
                    for r in result.trace.records]
        offset += result.steps
    last = next(r for r, ok in reversed(rounds) if ok)
    first = rounds[0][0].trace
    trace = Trace(first.families, first.extra, records, first.provenance)
    return SolveResult(last.x, last.energy, energy_initial, last.families, offset, last.reason,
                       trace, last.solver, last.options, last.second_order, last.auto)
