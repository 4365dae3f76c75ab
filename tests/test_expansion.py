"""Energy-gated expansion (runtime/coordinate/expansion.py): a gated family or instance is
admitted exactly when its confirmed saving beats -tau - gamma * count. The oracle: on
x^2 - delta x (a bonus gate_benefit over a quadratic well) the saving is delta^2 / 4 in
closed form; on the grid, the cost is varied around the measured ΔF."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cfc_dsl as cfc
from cfc_dsl.diagnostics import CfcError
from cfc_dsl.runtime.coordinate.expansion import ExpansionOptions, GateSpec
from conftest import EXAMPLES, run_cfc

WELL = """
model well
size N = 4
param delta[N] = 0.0
param price = 0.02
var x[N] in [0, 1] = 0.0
factor local[i in 0..N] = landau(x[i]; a = 1.0, b = 0.0)
factor bonus = gate_benefit(x[0]; w = 1.0, delta = 0.3) gated cost price
factor strain[i in 0..N-1] = quadratic(x[i], x[i+1]; w = 1.0) gated cost 0
"""

PER_INSTANCE = """
model bonuses
size N = 4
param price = 0.015
var x[N] in [0, 1] = 0.0
factor local[i in 0..N] = landau(x[i]; a = 1.0, b = 0.0)
factor bonus[i in 0..N] = gate_benefit(x[i]; w = 1.0, delta = 0.1 * (i + 1))
    gated per instance cost price
"""
SHORTCUTS = EXAMPLES / "grid_shortcuts.npy"


def _relax(source: str, **kw):  # type: ignore[no-untyped-def]
    params = kw.pop("params", None)
    return cfc.loads(source, "m").compile().bind(params=params).relax(
        solver="pgd", max_steps=5000, tol=1e-12, **kw)


@pytest.mark.parametrize(("price", "verdict"), [(0.02, "admitted"), (0.03, "rejected")])
def test_a_family_is_admitted_exactly_when_it_pays(price: float, verdict: str) -> None:
    r = _relax(WELL, params={"price": price})
    bonus, strain = r.coordination.decisions
    # bonus: min x^2 - 0.3 x = -0.0225 against 0 without it; first order at x = 0: the
    # gradient -0.3 times the step bound 0.1
    assert (bonus.family, bonus.instance) == ("bonus", None)
    assert bonus.dF == pytest.approx(-0.0225, abs=1e-9)
    assert bonus.dF_predicted == pytest.approx(-0.03, abs=1e-12)
    assert bonus.threshold == pytest.approx(-price)
    assert bonus.verdict == verdict
    # a quadratic coupling never lowers a minimum: it does not pay even at cost 0
    assert strain.family == "strain" and strain.verdict == "rejected" and strain.dF >= -1e-12
    assert r.coordination.admitted == {"bonus": verdict == "admitted", "strain": False}
    expected = -0.0225 if verdict == "admitted" else 0.0
    assert r.energy == pytest.approx(expected, abs=1e-9)
    assert r.families["strain"] == 0.0  # the rejected family is off in the result


def test_tau_and_gamma_options_move_the_threshold() -> None:
    r = _relax(WELL, expansion={"tau": 0.01})
    assert r.coordination.decisions[0].threshold == pytest.approx(-0.03)
    assert r.coordination.decisions[0].verdict == "rejected"
    r = _relax(WELL, expansion=ExpansionOptions(gamma=0.001))
    assert [d.threshold for d in r.coordination.decisions] == pytest.approx([-0.001, -0.003])
    with pytest.raises(CfcError, match="expansion option"):
        _relax(WELL, expansion={"tau": -1})


def test_expansion_off_keeps_every_family() -> None:
    r = _relax(WELL, expansion=False)
    assert r.coordination is None
    assert r.families["strain"] > 0 and r.families["bonus"] < 0  # both present


def test_per_instance_admits_the_instances_that_pay() -> None:
    r = _relax(PER_INSTANCE)
    decisions = r.coordination.decisions
    # predicted saving 0.1 * delta_i: the largest delta is tried first
    assert [d.instance for d in decisions] == [3, 2, 1, 0]
    saving = [(0.1 * (k + 1)) ** 2 / 4 for k in (3, 2, 1, 0)]  # independent wells
    assert [d.dF for d in decisions] == pytest.approx([-s for s in saving], abs=1e-9)
    assert [d.verdict for d in decisions] == ["admitted", "admitted", "rejected", "rejected"]
    assert all(d.threshold == pytest.approx(-0.015) for d in decisions)
    assert r.coordination.admitted == {"bonus": (2, 3)}
    np.testing.assert_allclose(r.values["x"], [0, 0, 0.15, 0.2], atol=1e-7)
    # the trace: stage 0 the base relaxation, stage k decision k; rejected trials' rows are
    # not accepted steps
    frame = r.trace
    assert sorted(set(frame["stage"].to_list())) == [0, 1, 2, 3, 4]
    assert not any(frame.filter(frame["stage"] >= 3)["accepted"].to_list())
    assert all(frame.filter(frame["stage"] <= 2)["accepted"].to_list())


def test_python_gates_override_the_model() -> None:
    src = PER_INSTANCE.replace("gated per instance cost price", "")
    r = _relax(src, gates={"bonus": GateSpec(0.0)})
    (d,) = r.coordination.decisions
    assert d.instance is None and d.verdict == "admitted"
    assert d.dF == pytest.approx(-sum((0.1 * (k + 1)) ** 2 / 4 for k in range(4)), abs=1e-9)
    with pytest.raises(CfcError, match="no factor family 'bonu'"):
        _relax(src, gates={"bonu": 0.1})


@pytest.fixture(scope="module")
def grid():  # type: ignore[no-untyped-def]
    return cfc.load(EXAMPLES / "experiments" / "grid_expansion.cfc").compile()


def test_grid_shortcuts_admitted_exactly_when_they_pay(grid) -> None:  # type: ignore[no-untyped-def]
    p = grid.bind(data={"shortcuts": SHORTCUTS})
    count = p.bound.families[p.family_names.index("shortcut")].size
    measured = p.relax(gates={"shortcut": GateSpec(0.0)}).coordination.decisions[0].dF
    assert measured < 0  # the shortcut family as a whole saves energy
    per_instance_pay = -measured / count
    for factor, verdict in ((0.9, "admitted"), (1.1, "rejected")):
        r = p.relax(gates={"shortcut": GateSpec(factor * per_instance_pay)})
        (d,) = r.coordination.decisions
        assert d.dF == pytest.approx(measured, rel=1e-9)
        assert d.threshold == pytest.approx(-factor * per_instance_pay * count)
        assert d.verdict == verdict
    # per instance (the model's own clause): each verdict follows its own dF and threshold
    r = p.relax()
    decisions = r.coordination.decisions
    assert len(decisions) == count
    assert all(d.admitted == (d.dF < d.threshold) for d in decisions)
    admitted = sorted(d.instance for d in decisions if d.admitted)
    assert 0 < len(admitted) < count  # some shortcuts pay, some (to the source) do not
    assert r.coordination.admitted == {"shortcut": tuple(admitted)}
    assert r.energy < p.relax(expansion=False).energy  # dropping the bad ones helps
    dear = grid.bind(data={"shortcuts": SHORTCUTS}, params={"price": 1.0}).relax()
    assert not any(d.admitted for d in dear.coordination.decisions)


def test_run_json_lists_the_decisions() -> None:
    out = run_cfc("run", str(EXAMPLES / "experiments" / "grid_expansion.cfc"), "--data",
                  f"shortcuts={SHORTCUTS}", "--json")
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    decisions = payload["expansion"]["decisions"]
    assert {tuple(sorted(d)) for d in decisions} == {
        ("dF", "dF_predicted", "family", "instance", "threshold", "verdict")}
    assert len(decisions) == 24
    assert payload["expansion"]["admitted"]["shortcut"] == sorted(
        d["instance"] for d in decisions if d["verdict"] == "admitted")
