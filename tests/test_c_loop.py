"""pgd's steps in C (runtime/solvers/cloop.py, built by runtime/build/loops.py) against its
Python loop on the same problems: the same accepted steps, stop reason and trace length,
energies and states equal to round-off, the recorded energy exactly the backend's own at the
final state; the loop applies where it should and steps aside where it must."""

from __future__ import annotations

import itertools
import os
import stat
from pathlib import Path

import numpy as np
import pytest

import cfc_dsl as cfc
from cfc_dsl.diagnostics import CfcError
from cfc_dsl.runtime.build import loops
from cfc_dsl.runtime.solvers import cloop

ROOT = Path(__file__).resolve().parent.parent
RANDOM = """\
model random_workload
size N = 10
var x[N] in [0, 1] = 0.9
data edges[M, 2] : int
data w[M]
data hedges[K, 2] : int
data hw[K]
factor local[i in 0..N] = landau(x[i]; a = -0.5, b = 1.0)
factor quad[e in 0..M]  = quadratic(x[edges[e, 0]], x[edges[e, 1]]; w = w[e])
factor hinge[e in 0..K] = directed_hinge(x[hedges[e, 0]], x[hedges[e, 1]]; w = hw[e])
"""
SADDLE = """model saddle
var x in [-1, 1] = 0.0
var y in [-1, 1] = 0.0
energy s(x, y) = x * x - y * y
factor f = s(x, y)
"""


@pytest.fixture(scope="module")
def random_model():  # type: ignore[no-untyped-def]
    return cfc.loads(RANDOM, "random.cfc").compile()


def workload(compiled, n: int, seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    return compiled.bind(sizes={"N": n}, init={"x": rng.uniform(0.0, 1.0, n)}, data={
        "edges": rng.integers(0, n, (2 * n, 2)), "w": rng.uniform(0.1, 2.0, 2 * n),
        "hedges": rng.integers(0, n, (2 * n, 2)), "hw": rng.uniform(0.1, 2.0, 2 * n)})


class Spy:
    """Counts the C loop's batches."""

    def __init__(self, monkeypatch):  # type: ignore[no-untyped-def]
        self.calls = 0
        advance = cloop.PgdLoop.advance

        def counted(loop, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.calls += 1
            return advance(loop, *args, **kwargs)

        monkeypatch.setattr(cloop.PgdLoop, "advance", counted)


def on_and_off(make, monkeypatch, solver: str, count, what: str, **options):  # type: ignore[no-untyped-def]
    """(run with the C loops, run with CFC_C_LOOPS=0) of `solver` on fresh bindings of one
    problem; `count()` says how often the C loop `what` ran, which only the first may."""
    monkeypatch.delenv("CFC_C_LOOPS", raising=False)
    fast = make().relax(solver, **options)
    assert count() > 0, f"{what} did not run"
    monkeypatch.setenv("CFC_C_LOOPS", "0")
    before = count()
    slow = make().relax(solver, **options)
    assert count() == before, f"CFC_C_LOOPS=0 still ran {what}"
    return fast, slow


def both(make, monkeypatch, **options):  # type: ignore[no-untyped-def]
    """(C loop run, Python loop run) of pgd on fresh bindings of one problem."""
    spy = Spy(monkeypatch)
    return on_and_off(make, monkeypatch, "pgd", lambda: spy.calls, "the C loop", **options)


def agree(fast, slow) -> None:  # type: ignore[no-untyped-def]
    assert fast.steps == slow.steps
    assert fast.reason == slow.reason
    assert len(fast.result.trace.records) == len(slow.result.trace.records)
    assert fast.energy == pytest.approx(slow.energy, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(fast.x, slow.x, rtol=0, atol=1e-9)
    assert fast.second_order == slow.second_order or (
        fast.second_order["passed"] == slow.second_order["passed"])
    for before, after in itertools.pairwise(fast.result.trace.energies):
        assert after <= before, f"the energy rose from {before!r} to {after!r}"


@pytest.mark.parametrize("n, seed", [(100, 0), (1000, 0), (300, 3)])
def test_c_loop_matches_the_python_loop(random_model, monkeypatch, n: int, seed: int) -> None:  # type: ignore[no-untyped-def]
    fast, slow = both(lambda: workload(random_model, n, seed), monkeypatch)
    agree(fast, slow)
    # the energy recorded is the backend's own at that state, to the bit (fsum in C)
    problem = workload(random_model, n, seed)
    assert fast.energy == problem.energy_and_grad(fast.x)[0]
    # every trial with its gradient: no more kernel passes than the Python loop
    assert fast.result.evaluations <= slow.result.evaluations


@pytest.mark.parametrize("options", [{"step": 0.05}, {"max_steps": 7}, {"tol": 1e-3},
                                     {"ftol": 1e-6, "stall_steps": 2}])
def test_c_loop_options(random_model, monkeypatch, options) -> None:  # type: ignore[no-untyped-def]
    agree(*both(lambda: workload(random_model, 200), monkeypatch, **options))


def test_c_loop_on_the_examples(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    chain = cfc.load(ROOT / "examples" / "chain.cfc").compile()
    jitter = np.random.default_rng(1).uniform(-0.05, 0.05, 500)
    agree(*both(lambda: chain.bind(sizes={"N": 500}, init={"eta": 0.9 + jitter}),
                monkeypatch))
    dense = cfc.load(ROOT / "examples" / "seed_dense.cfc").compile()
    agree(*both(lambda: dense.bind(sizes={"N": 16}), monkeypatch))


def test_c_loop_still_escapes_a_saddle(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    compiled = cfc.loads(SADDLE, "saddle.cfc").compile()
    fast, slow = both(lambda: compiled.bind(init={"x": 0.3, "y": 0.0}), monkeypatch)
    agree(fast, slow)
    assert fast.converged and fast.second_order["passed"]
    assert abs(float(fast.values["y"])) == 1.0  # left the saddle at y = 0 for a corner


def test_c_loop_steps_aside(random_model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Progress hooks, rejected-trial rows and pgd's non-default directions keep the
    Python loop (they see each step as it happens, or the loop does not take them)."""
    spy = Spy(monkeypatch)
    problem = workload(random_model, 50)
    problem.relax("pgd", progress=lambda step, f, pg: None)
    problem.relax("pgd", normalize_grads=True)
    problem.relax("pgd", max_grad_norm=0.5)
    problem.relax("pgd", options={"lipschitz_cap": True})
    from cfc_dsl.runtime.observe.records import Observe

    problem.relax("pgd", progress=Observe(rejected=True))
    assert spy.calls == 0


def test_a_nonfinite_energy_is_the_same_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    source = """model log_domain
size N = 3
var x[N] in [0, 1] = 0.5
energy e(x) = log(x)
factor bad[i in 0..N] = e(x[i])
"""
    compiled = cfc.loads(source, "log_domain.cfc").compile()
    outcomes = []
    for env in ("1", "0"):
        monkeypatch.setenv("CFC_C_LOOPS", env)
        try:
            r = compiled.bind(init={"x": [0.5, 0.2, 0.9]}).relax("pgd", max_steps=200)
            outcomes.append((r.steps, r.reason, r.energy))
        except CfcError as err:
            outcomes.append(("error", err.message))
    assert outcomes[0][:2] == outcomes[1][:2]


def test_the_loop_library_is_private_and_cached(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    monkeypatch.setenv("CFC_CACHE_DIR", str(folder))
    loops._load.cache_clear()
    assert loops.loop_library("pgd", cloop.SOURCE, cloop.CDEF) is not None
    built = list(folder.glob("loop-pgd-*.so"))
    assert len(built) == 1
    assert not built[0].stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    assert not list(folder.glob(".loop-*")), "the staging folder was left behind"
    # a library someone else could have written is never loaded: the Python loop serves
    loops._load.cache_clear()
    os.chmod(built[0], 0o777)
    assert loops.loop_library("pgd", cloop.SOURCE, cloop.CDEF) is None
    loops._load.cache_clear()
    monkeypatch.setenv("CFC_C_LOOPS", "0")
    assert loops.loop_library("pgd", cloop.SOURCE, cloop.CDEF) is None
    loops._load.cache_clear()
