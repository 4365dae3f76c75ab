"""Continuation on effective family weights (runtime/coordinate/homotopy.py): the chain
ends where a plain relaxation ends on convex settings and at the ordered minimum from
eta = 0.9; each stage is monotone on its own objective; the last stage has the user's
weights; the schedules' weights follow their formulas; the guard backs the start off."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

import cfc_dsl as cfc
from cfc_dsl.diagnostics import CfcError
from cfc_dsl.runtime.coordinate import HomotopyOptions, Schedule, Shape, continuation
from cfc_dsl.runtime.solvers.registry import parse_options
from conftest import EXAMPLES, run_cfc

CONVEX = """
model convex_chain
size N = 12
var eta[N] in [0, 1] = 0.9
factor local[i in 0..N]  = landau(eta[i]; a = 0.5, b = 1.0, h = 0.3 * (i % 3))
factor link[i in 0..N-1] = quadratic(eta[i], eta[i+1]; w = 0.8)
"""


@pytest.fixture(scope="module")
def chain():  # type: ignore[no-untyped-def]
    return cfc.load(EXAMPLES / "chain.cfc").compile()


def test_convex_chain_ends_at_the_plain_minimum() -> None:
    p = cfc.loads(CONVEX, "convex").compile().bind()
    plain = p.relax(solver="pgd", max_steps=5000)
    ramped = p.relax(solver="pgd", max_steps=5000, homotopy=["link=0.1:8"])
    assert plain.converged and ramped.converged
    np.testing.assert_allclose(ramped.x, plain.x, atol=1e-6)
    assert ramped.energy == pytest.approx(plain.energy, abs=1e-10)
    # the minimum itself, by an independent solver on the same energy
    from scipy.optimize import minimize

    def f(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, _, grad = p.energy_and_grad(x)
        return value, grad

    ref = minimize(f, p.point(None), jac=True, method="L-BFGS-B",
                   bounds=list(zip(p.lower, p.upper, strict=True)), options={"ftol": 1e-15})
    np.testing.assert_allclose(ramped.x, ref.x, atol=1e-5)


def test_from_09_the_chain_reaches_the_ordered_minimum(chain) -> None:  # type: ignore[no-untyped-def]
    p = chain.bind(sizes={"N": 16}, init={"eta": 0.9})
    r = p.relax(solver="pgd", homotopy=["link=0.1:10"])
    # landau(a=-0.5, b=1): a x^2 + x^4 is lowest at x^2 = -a/2; equal neighbours cost nothing
    np.testing.assert_allclose(r.values["eta"], 0.5, atol=1e-6)
    assert r.energy == pytest.approx(16 * (-0.5 * 0.25 + 0.0625), abs=1e-9)
    assert len(r.homotopy) == 10
    assert r.homotopy[-1]["weights"] == {"local": 1.0, "link": 1.0}


def test_every_stage_is_monotone_and_the_last_has_the_users_weights(chain) -> None:  # type: ignore[no-untyped-def]
    p = chain.bind(sizes={"N": 16}, params={"a": -0.3}, weights={"link": 2.0},
                   init={"eta": 0.9})
    r = p.relax(solver="pgd", homotopy=[Schedule("link", 0.1, 6, shape=Shape.GEOMETRIC)])
    frame = r.trace
    assert {"stage", "weight.link"} <= set(frame.columns)
    stages = frame["stage"].unique().sort().to_list()
    assert stages == [float(k) for k in range(6)]
    for k in stages:
        energies = frame.filter((pl.col("stage") == k) & pl.col("accepted"))["energy"].to_numpy()
        assert np.all(np.diff(energies) <= 1e-12 * np.maximum(1.0, np.abs(energies[:-1])))
    # geometric: w_k = 0.1 (2 / 0.1)^(k / 5), the last exactly the user's 2.0
    expected = [0.1 * (2.0 / 0.1) ** (k / 5) for k in range(5)] + [2.0]
    assert [s["weights"]["link"] for s in r.homotopy] == pytest.approx(expected, rel=1e-12)
    assert [s["weights"]["link"] for s in r.homotopy][-1] == 2.0
    # the trace's weight column says the same, stage by stage
    per_stage = frame.group_by("stage").agg(pl.col("weight.link").first()).sort("stage")
    assert per_stage["weight.link"].to_list() == pytest.approx(expected, rel=1e-12)
    # energy_fixed is the user's objective: check against problem.energy at its weights
    np.testing.assert_array_equal(p.weights, [1.0, 2.0])  # restored after the run
    assert r.energy_fixed == pytest.approx(p.energy(r.x)[0], rel=1e-14)
    for stage in r.homotopy:
        assert stage["steps"] >= 0 and stage["reason"]


def test_schedule_parse_and_checks(chain) -> None:  # type: ignore[no-untyped-def]
    assert Schedule.parse("link=0.1:40") == Schedule("link", 0.1, 40)
    assert Schedule.parse("link=0.2:5:geometric").shape is Shape.GEOMETRIC
    for bad in ("link", "link=0.1", "link=a:4", "link=0.1:0", "link=0.1:2.5", "link=1:4:cubic"):
        with pytest.raises(CfcError):
            Schedule.parse(bad)
    p = chain.bind(sizes={"N": 4})
    with pytest.raises(CfcError, match="did you mean 'link'"):
        p.relax(homotopy=["lnk=0.1:4"])
    with pytest.raises(CfcError, match="geometric"):
        p.relax(homotopy=["link=0:4:geometric"])
    s = Schedule("link", 0.5, 3, final=1.0)
    assert [s.weight_at(k) for k in range(4)] == [0.5, 0.75, 1.0, 1.0]


GUARD = """
model guard
var x in [-1, 1] = 0.7
factor well = landau(x; a = -1, b = 1.0, h = 0.1)
factor pull = compression(x; a = 1, t = -1)
weight pull = 0.01
"""


def test_the_guard_backs_the_start_scale_off_when_a_stage_oscillates() -> None:
    # a strong start on `pull` drags x into the well that is worse for the user's objective:
    # the energy under the final weights rises over stage 0, so the start scale is halved
    p = cfc.loads(GUARD, "guard").compile().bind()
    options = parse_options("pgd", {})
    sched = [Schedule("pull", 5.0, 3)]
    r = continuation(p, "pgd", p.point(None), options, None, sched)
    assert r.coordination.backoffs >= 1
    first = r.homotopy[0]
    assert first["energy_fixed"] > p.energy(p.point(None))[0]
    assert "backed off" in first["note"]
    # stage 1 follows the halved scale: start' = 0.5 * (5 / 0.01) * 0.01 = 2.5
    assert r.homotopy[1]["weights"]["pull"] == pytest.approx(2.5 + (0.01 - 2.5) * 0.5)
    off = continuation(p, "pgd", p.point(None), options, None, sched,
                       HomotopyOptions(guard=False))
    assert off.coordination.backoffs == 0
    assert off.homotopy[1]["weights"]["pull"] == pytest.approx(5.0 + (0.01 - 5.0) * 0.5)
    assert r.homotopy[-1]["weights"]["pull"] == off.homotopy[-1]["weights"]["pull"] == 0.01


def test_cli_homotopy_json() -> None:
    out = run_cfc("run", str(EXAMPLES / "chain.cfc"), "--set", "N=8", "--homotopy",
                  "link=0.1:4", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [s["stage"] for s in data["homotopy"]] == [0, 1, 2, 3]
    assert data["homotopy"][-1]["weights"]["link"] == 1.0
    assert data["energy_fixed"] == pytest.approx(data["energy"])
    bad = run_cfc("run", str(EXAMPLES / "chain.cfc"), "--homotopy", "link=0.1:x")
    assert bad.returncode == 2 and "--homotopy" in bad.stderr and "^" in bad.stderr


SCHEDULED = """
model scheduled
size N = 6
var eta[N] in [0, 1] = 0.9
factor local[i in 0..N]  = landau(eta[i]; a = -0.5, b = 1.0)
factor link[i in 0..N-1] = quadratic(eta[i], eta[i+1])
weight link = 2.0 from 0.5 over 4 geometric
"""


def test_the_models_schedule_drives_relax() -> None:
    try:
        model = cfc.loads(SCHEDULED, "scheduled")
    except CfcError:
        pytest.skip("the `weight f = v from s over n` syntax has not landed")
    p = model.compile().bind()
    r = p.relax(solver="pgd")
    assert [s["weights"]["link"] for s in r.homotopy] == pytest.approx(
        [0.5 * 4.0 ** (k / 3) for k in range(4)], rel=1e-12)
    assert p.relax(solver="pgd", homotopy=[]).homotopy is None  # [] turns it off
