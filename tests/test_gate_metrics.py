"""Gate metrics (runtime/coordinate/gates.py) against hand-computed values: the aggregates
from given openings and redemptions, the gates and targets found in a model, and a
two-variable model whose relaxed and gate-closed minima are known in closed form."""

from __future__ import annotations

import json
import math

import pytest

import cfc_dsl as cfc
from cfc_dsl.runtime.coordinate.gates import gate_metrics, gate_sites, metrics
from conftest import EXAMPLES, run_cfc


def test_aggregates_by_hand() -> None:
    # four gates: two open with redemption 0.2 and -0.1, one open at exactly 0, one closed
    m = metrics([0.9, 0.6, 0.75, 0.2], [0.2, -0.1, 0.0, 0.05])
    assert (m.gates, m.expansions, m.expansion_rate) == (4, 3, 0.75)
    assert m.redemption == pytest.approx((0.2 - 0.1 + 0.0 + 0.05) / 4)
    hazards = [-math.log(1 - g) for g in (0.9, 0.6, 0.75, 0.2)]
    assert m.hazard_mean == pytest.approx(sum(hazards) / 4)
    # expansions per unit of the redemption they bought: 3 / (0.2 + 0 + 0)
    assert m.mu_hat == pytest.approx(15.0)
    assert (m.good, m.bad) == (1, 2)
    assert m.good_bad_ratio == pytest.approx(0.5)


def test_undefined_ratios_are_none_not_epsilon_fudged() -> None:
    none = metrics([0.1, 0.2], [0.3, 0.0])  # nothing expands
    assert (none.expansions, none.mu_hat, none.good_bad_ratio) == (0, 0.0, None)
    only_good = metrics([0.9], [0.4])  # the research code reports ~1e6 here
    assert (only_good.good, only_good.bad, only_good.good_bad_ratio) == (1, 0, None)
    assert only_good.mu_hat == pytest.approx(2.5)
    bought_nothing = metrics([0.9], [-0.2])  # the research code reports ~1e9 here
    assert bought_nothing.mu_hat is None and bought_nothing.bad == 1
    shut = metrics([1.0], [0.0])
    assert shut.hazard_mean == pytest.approx(-math.log(1e-12), rel=1e-6)  # capped, finite


def test_gates_and_targets_of_sequence_redemption() -> None:
    p = cfc.load(EXAMPLES / "sequence_redemption.cfc").compile().bind()
    sites = gate_sites(p.bound)
    gate = p.bound.variable("gate").offset
    eta_d = p.bound.variable("eta").offset + 20  # repair = directed_hinge(eta[D], gate)
    assert sites.gates == (gate,) and sites.targets == ((eta_d,),)


REPAIR = """
model repair
var t in [0, 1] = 0.0
var g in [0, 1] = 0.0
factor local = landau(t; a = 1.0, b = 0.0)
factor cost  = gate_local(g; a = 0.1, b = 0.0)
factor open  = gate_benefit(g; w = 1.0, delta = 0.8)
factor link  = quadratic(t, g; w = 1.0)
"""


def test_relaxed_metrics_by_hand() -> None:
    # F = t^2 + 0.1 g^2 - 0.8 g + (t - g)^2: t = g / 2, 1.2 g = 0.8, so g = 2/3, t = 1/3;
    # with the gate held closed t = 0, so the redemption is 1/3
    r = cfc.loads(REPAIR, "repair").compile().bind().relax(solver="pgd", max_steps=5000,
                                                           tol=1e-12)
    m = gate_metrics(r)
    assert m is not None
    assert r.values["g"] == pytest.approx(2 / 3, abs=1e-8)
    assert (m.gates, m.expansions, m.good, m.bad) == (1, 1, 1, 0)
    assert m.redemption == pytest.approx(1 / 3, abs=1e-8)
    assert m.hazard_mean == pytest.approx(math.log(3), abs=1e-7)
    assert m.mu_hat == pytest.approx(3.0, abs=1e-6)
    assert m.per_gate[0]["gate"] == "g"


def test_no_gates_no_metrics_and_run_json() -> None:
    chain = cfc.load(EXAMPLES / "chain.cfc").compile().bind()
    assert gate_metrics(chain.relax(max_steps=50)) is None
    out = run_cfc("run", str(EXAMPLES / "sequence_redemption.cfc"), "--json")
    assert out.returncode == 0, out.stderr
    gates = json.loads(out.stdout)["gates"]
    assert gates["gates"] == 1 and {"expansion_rate", "redemption", "hazard_mean", "mu_hat",
                                    "good_bad_ratio"} <= set(gates)
