"""Term-weight adapters (runtime/coordinate/adapters.py): GradNorm raises a family below
its target norm and lowers one above it, from the user's own weights (the research code's
0.25 -> 1.125 failure), within its floor and ceiling; balance scales a hot family down to
the target; SmallGain's allocation follows rho under a recomputed certified L; every result's
`energy_fixed` is the energy under the user's weights (checked with problem.energy)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cfc_dsl as cfc
from cfc_dsl.diagnostics import CfcError
from cfc_dsl.runtime.coordinate.adapters import (
    AdapterState,
    Balance,
    GradNorm,
    certified_L,
    parse_options,
)
from conftest import EXAMPLES, run_cfc


@pytest.fixture(scope="module")
def chain():  # type: ignore[no-untyped-def]
    return cfc.load(EXAMPLES / "chain.cfc").compile()


def state(norms: list[float], weights: list[float]) -> AdapterState:
    w = np.array(weights)
    return AdapterState(None, np.zeros(1), 0.0, np.array(norms), w, w.copy(),
                        np.ones(len(w), dtype=bool), 0)


def test_gradnorm_raises_below_target_and_lowers_above() -> None:
    o = parse_options("gradnorm", {})
    new = GradNorm().step(state([0.5, 2.0, 1.0], [1.0, 1.0, 1.0]), o)
    # w (1 + 0.1 * 1.5 * (1 - n / 1)), by hand
    assert new.tolist() == pytest.approx([1.075, 0.85, 1.0])


def test_gradnorm_starts_from_the_users_weight_not_from_one() -> None:
    # the research code's adapter started from an empty map (w = 1): with n/target = 1/6 it
    # turned the user's 0.25 into 1.125; from the user's weight it is 0.25 * 1.125
    o = parse_options("gradnorm", {"floor": 0.0})
    new = GradNorm().step(state([1 / 6], [0.25]), o)
    assert new[0] == pytest.approx(0.28125)
    assert new[0] != pytest.approx(1.125)


def test_gradnorm_clamps_to_floor_and_ceiling() -> None:
    o = parse_options("gradnorm", {"floor": 0.2, "ceiling": 1.5, "rate": 1.0})
    new = GradNorm().step(state([0.0, 100.0, float("nan")], [1.4, 0.3, 1.0]), o)
    assert new[0] == 1.5 and new[1] == 0.2  # 1.4 * 2.5 capped; 0.3 * (1 - 148.5) floored
    assert 0.2 <= new[2] <= 1.5  # a NaN norm takes the mean of the valid ones


def test_balance_scales_only_a_hot_family_down() -> None:
    o = parse_options("balance", {"target": 1.0, "ratio": 10.0})
    new = Balance().step(state([50.0, 5.0, 0.0], [2.0, 1.0, 1.0]), o)
    assert new.tolist() == pytest.approx([2.0 / 50.0, 1.0, 1.0])


def test_gradnorm_run_starts_from_the_bound_weights(chain) -> None:  # type: ignore[no-untyped-def]
    p = chain.bind(sizes={"N": 8}, weights={"local": 0.25}, init={"eta": 0.9})
    r = p.relax(solver="pgd", adapter="gradnorm", adapter_options={"rounds": 3})
    rounds = r.adapter["rounds"]
    assert rounds[0]["weights"] == {"local": 0.25, "link": 1.0}
    # round 1's weights follow the formula from round 0's norms and the user's weights
    n = rounds[0]["grad_norms"]
    for f, w in (("local", 0.25), ("link", 1.0)):
        expect = float(np.clip(w * (1 + 0.15 * (1 - n[f])), 0.1, 2.0))
        assert rounds[1]["weights"][f] == pytest.approx(expect, rel=1e-12)
    # energy_fixed: the final state under the user's weights, as problem.energy gives it
    np.testing.assert_array_equal(p.weights, [0.25, 1.0])
    assert r.energy_fixed == pytest.approx(p.energy(r.x)[0], rel=1e-14)
    assert rounds[-1]["energy_fixed"] == r.energy_fixed
    p.weights = list(rounds[-1]["weights"].values())
    assert r.energy == pytest.approx(p.energy(r.x)[0], rel=1e-14)  # the adapted objective


def test_smallgain_allocation_follows_rho(chain) -> None:  # type: ignore[no-untyped-def]
    p = chain.bind(sizes={"N": 8}, init={"eta": 0.9})
    L0 = certified_L(p, p.weights)[0]
    finals = {}
    for rho in (0.1, 0.3, 0.6):
        r = p.relax(solver="pgd", adapter="smallgain",
                    adapter_options={"rounds": 40, "rho": rho, "round_steps": 20})
        w = np.array(list(r.adapter["rounds"][-1]["weights"].values()))
        finals[rho] = w
        assert w[0] == 1.0  # `local` is no coupling: never moved
        assert certified_L(p, w)[0] <= L0 + rho * L0 + 1e-9  # lmax = 2 L0: margin L0
        assert r.energy_fixed == pytest.approx(p.energy(r.x)[0], rel=1e-14)
    links = [finals[rho][1] for rho in (0.1, 0.3, 0.6)]
    assert links[0] < links[1] < links[2], links  # unlike the research code's identical rows


def test_options_are_checked() -> None:
    with pytest.raises(CfcError, match="did you mean 'rate'"):
        parse_options("gradnorm", {"rte": 1})
    with pytest.raises(CfcError, match=">= 1"):
        parse_options("gradnorm", {"rounds": 0})
    with pytest.raises(CfcError, match="unknown adapter"):
        parse_options("gradnrm", {})


def test_cli_adapter_json() -> None:
    out = run_cfc("run", str(EXAMPLES / "chain.cfc"), "--set", "N=8", "--set",
                  "weight.local=0.25", "--solver", "pgd", "--adapter", "gradnorm",
                  "--adapter-opt", "rounds=3", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["adapter"]["name"] == "gradnorm"
    assert [r["stage"] for r in data["adapter"]["rounds"]] == [0, 1, 2]
    assert data["adapter"]["rounds"][0]["weights"]["local"] == 0.25
    assert "energy_fixed" in data and data["energy_fixed"] != data["energy"]
    ran = run_cfc("run", str(EXAMPLES / "chain.cfc"), "--set", "N=8", "--json")
    assert ran.returncode == 0, ran.stderr
    plain = json.loads(ran.stdout)
    assert plain["energy_fixed"] == plain["energy"]
    bad = run_cfc("run", str(EXAMPLES / "chain.cfc"), "--adapter", "gradnorm",
                  "--adapter-opt", "rte=1")
    assert bad.returncode == 2 and "did you mean 'rate'" in bad.stderr
