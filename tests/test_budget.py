"""The research code's tracker columns (SEED_SPEC §5.1-5.2) in `BudgetTracker`, against
values worked out by hand (NumPy formulas of the energies, not the backend) on a single
Landau term and a two-family chain: energy changes, costs, gains, monotonicity, backtracks,
per-class energies summed over families, AGM metrics, and the breakdown at the relaxed
state rather than the initial one."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cfc_dsl as cfc
from cfc_dsl.runtime.observe.budget import BudgetTracker, agm_metrics, energy_classes
from cfc_dsl.runtime.observe.records import Observe
from cfc_dsl.runtime.solvers.base import Run, StopOptions, StopReason

LANDAU = "model one\nvar x in [0, 1] = 0.5\nfactor l = landau(x; a = -1, b = 1)\n"
CHAIN = """model chain
var eta[3] in [0, 1] = 0.3
factor local[i in 0..3] = landau(eta[i]; a = -0.5, b = 1.0)
factor link[i in 0..2] = quadratic(eta[i], eta[i+1]; w = 0.8)
weight link = 0.5
"""
# two families of one class: the research code reported only the last one's energy
TWO_LANDAU = CHAIN + "factor end = landau(eta[2]; a = 0.2, b = 0.0, h = 0.1)\n"


def landau_f(x: float) -> float:
    return -x**2 + x**4


def problem(text: str, name: str):  # type: ignore[no-untyped-def]
    return cfc.loads(text, name).compile(backend="python").bind()


def hand_run(p, points, budget, rejected=()):  # type: ignore[no-untyped-def]
    """Accept each point in turn (two backtracks each); a rejected trial before each step
    listed in `rejected`."""
    objective = p.objective()
    obs = Observe(trackers=(budget,), family_grads=True, rejected=True)
    run = Run(objective, points[0], StopOptions(lanczos_steps=0), "hand", None, obs)
    for k, x in enumerate(points[1:], start=1):
        if k in rejected:
            f_bad, fam_bad = objective.energy(np.ones_like(x))
            run.reject(k, f_bad, 1.0, 0, fam_bad, np.ones_like(x))
        f, fam, g = objective.energy_and_grad(x)
        run.accept(k, x, f, fam, g, 0.1, 2, None)
    return run


def test_every_column_of_a_single_landau_term() -> None:
    p = problem(LANDAU, "one.cfc")
    budget = BudgetTracker.for_problem(p, run_id="r1")
    xs = [np.array([0.5]), np.array([0.6]), np.array([0.7])]
    run = hand_run(p, xs, budget, rejected=(2,))
    energies = [landau_f(float(x[0])) for x in xs]
    assert [r["step"] for r in budget.rows] == [0, 1, 2]  # the rejected trial has no row
    records = run.trace.records
    for k, row in enumerate(budget.rows):
        assert row["run_id"] == "r1"
        assert row["energy"] == pytest.approx(energies[k], abs=1e-15)
        assert row["class.local.landau"] == pytest.approx(energies[k], abs=1e-15)
        if k == 0:
            assert math.isnan(row["delta_energy"]) and math.isnan(row["redemption_gain"])
        else:
            delta = energies[k] - energies[k - 1]
            assert row["delta_energy"] == pytest.approx(delta, abs=1e-15)
            assert delta < 0  # both steps go down the well towards 1/sqrt(2)
            assert row["redemption_gain"] == pytest.approx(-delta / row["compute_cost"])
        assert row["monotonicity_violation"] == 0
        assert row["last_backtracks"] == (0 if k == 0 else 2)
        assert row["total_backtracks"] == 2 * k
    assert [r["rejected_trials"] for r in budget.rows] == [0, 0, 1]
    # compute cost: the wall time of every record since the previous row, rejected included
    assert budget.rows[2]["compute_cost"] == pytest.approx(
        records[2].wall_time + records[3].wall_time)
    # the breakdown is the relaxed state's (x = 0.7), not the initial one's
    run.done(StopReason.MAX_STEPS)
    b = budget.breakdown
    assert b is not None and b.energy == pytest.approx(landau_f(0.7), abs=1e-15)
    assert b.grad_norms == {"l": pytest.approx(abs(-2 * 0.7 + 4 * 0.7**3))}
    s = -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))
    assert b.entropy == pytest.approx(s)
    assert b.free_energy == pytest.approx(landau_f(0.7) - s)


def test_classes_of_a_two_family_chain() -> None:
    p = problem(CHAIN, "chain.cfc")
    classes = energy_classes(p.bound.families)
    assert [(c.column, c.families) for c in classes] == [("class.local.landau", (0,)),
                                                         ("class.coupling.quadratic", (1,))]
    budget = BudgetTracker.for_problem(p)
    xs = [np.full(3, 0.5), np.array([0.2, 0.6, 0.9]), np.array([0.3, 0.65, 0.7])]
    run = hand_run(p, xs, budget)
    for row, x in zip(budget.rows, xs, strict=True):
        local = float(np.sum(-0.5 * x**2 + x**4))
        link = 0.5 * 0.8 * float(np.sum((x[:-1] - x[1:]) ** 2))  # weighted
        assert row["class.local.landau"] == pytest.approx(local, abs=1e-14)
        assert row["class.coupling.quadratic"] == pytest.approx(link, abs=1e-14)
    # step 1 raises F (0.5 -> a spread state): a violation, counted and kept counted
    e = [row["energy"] for row in budget.rows]
    assert e[1] > e[0]
    assert [r["monotonicity_violation"] for r in budget.rows] == [0, 1, int(e[2] > e[1])]
    assert budget.rows[-1]["monotonicity_violation_count"] == 1 + int(e[2] > e[1])
    assert math.isnan(budget.rows[1]["redemption_gain"])  # no gain on a rise
    run.done(StopReason.MAX_STEPS)
    x = xs[-1]
    b = budget.breakdown
    assert b is not None
    assert b.families["local"] == pytest.approx(float(np.sum(-0.5 * x**2 + x**4)))
    assert b.energy == pytest.approx(e[-1])


def test_a_class_sums_its_families() -> None:
    p = problem(TWO_LANDAU, "two.cfc")
    budget = BudgetTracker.for_problem(p)
    xs = [np.full(3, 0.5), np.array([0.4, 0.6, 0.8])]
    run = hand_run(p, xs, budget)
    for row, x in zip(budget.rows, xs, strict=True):
        local = float(np.sum(-0.5 * x**2 + x**4))
        end = 0.2 * x[2] ** 2 - 0.1 * x[2]
        assert row["class.local.landau"] == pytest.approx(local + end, abs=1e-14)
    run.done(StopReason.MAX_STEPS)
    assert budget.breakdown is not None
    assert budget.breakdown.classes["class.local.landau"] == pytest.approx(
        float(np.sum(-0.5 * xs[1] ** 2 + xs[1] ** 4)) + 0.2 * 0.64 - 0.08)


def test_agm_metrics_by_hand() -> None:
    e = [4.0, 2.0, 1.0, 1.0, 0.5, 0.5]
    r = [1 - abs(a - b) / (abs(a) + abs(b) + 1e-8) for a, b in zip(e, e[1:], strict=False)]
    m = agm_metrics(e)
    assert m["agm.rate"] == pytest.approx(sum(r) / 5)
    assert m["agm.variance"] == pytest.approx(np.var(r))
    slope = np.polyfit(range(5), r, 1)[0]
    assert m["agm.trend"] == pytest.approx(slope)
    d = np.abs(np.diff(r))
    assert m["agm.oscillation"] == pytest.approx(np.var(d))
    epistemic = min(1.0, 1 - np.mean(r) + np.var(d))
    assert m["uncertainty.epistemic"] == pytest.approx(epistemic)
    assert m["uncertainty.total"] == pytest.approx(epistemic)
    assert agm_metrics([1.0])["agm.rate"] == 0.0
    assert m["uncertainty.exploration_boost"] == (-0.02 if epistemic < 0.3 else 0.0)
    flat = agm_metrics([1.0])  # fewer than two energies: all zero, so epistemic is 1
    assert flat["agm.rate"] == 0.0 and flat["uncertainty.epistemic"] == 1.0
    assert flat["uncertainty.exploration_boost"] == 0.0


def test_a_relaxation_with_the_tracker() -> None:
    p = problem(CHAIN, "chain.cfc")
    budget = BudgetTracker.for_problem(p)
    result = p.relax(solver="pgd", progress=Observe(trackers=(budget,)), max_steps=40)
    frame = budget.frame()
    assert frame.height == len(result.result.trace.energies)
    assert frame["energy"].to_list() == result.result.trace.energies
    assert frame["monotonicity_violation_count"][-1] == 0  # pgd never raises F
    assert budget.breakdown is not None
    assert budget.breakdown.energy == pytest.approx(result.energy)
    assert budget.breakdown.families == pytest.approx(result.families)
