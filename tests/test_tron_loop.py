"""newton's trials in C (runtime/solvers/tronloop.py) against its Python loop
(CFC_C_LOOPS=0: `TrustRegionNewton.solve` and `_Model` in newton.py) on the same problems:
the same accepted steps, stop reason and trace rows (step lengths and rejected trials equal
to round-off), energies and states equal to round-off, every stop path (converged, the two
stalls, the step limit, a non-finite trial) and the places it must step aside."""

from __future__ import annotations

import numpy as np
import pytest
from test_c_loop import RANDOM, SADDLE, agree, on_and_off, workload

import cfc_dsl as cfc
from cfc_dsl.diagnostics import CfcError
from cfc_dsl.runtime.observe.records import Observe
from cfc_dsl.runtime.solvers import newton, tronloop

# the standard workload's edges on a tilted double well (minimum -0.61) in a box: [-3, 3]
# and [-10, 10] start far out on the quartic, where the quadratic model is poor (rejected
# trials, a shrinking radius), [-0.55, 0.6] holds the minimum outside (cut Cauchy steps,
# bounds active at the end)
BOXES = {"wide": (-3.0, 3.0), "wider": (-10.0, 10.0), "tight": (-0.55, 0.6)}
WIDE = """\
model wide_workload
size N = 10
var x[N] in [LO, HI] = 0.1
data edges[M, 2] : int
data w[M]
data hedges[K, 2] : int
data hw[K]
energy tilted(x) = -0.5 * x^2 + x^4 + 0.3 * x
factor local[i in 0..N] = tilted(x[i])
factor quad[e in 0..M]  = quadratic(x[edges[e, 0]], x[edges[e, 1]]; w = w[e])
factor hinge[e in 0..K] = directed_hinge(x[hedges[e, 0]], x[hedges[e, 1]]; w = hw[e])
"""


@pytest.fixture(scope="module")
def random_model():  # type: ignore[no-untyped-def]
    return cfc.loads(RANDOM, "random.cfc").compile()


@pytest.fixture(scope="module")
def wide_models():  # type: ignore[no-untyped-def]
    return {name: cfc.loads(WIDE.replace("LO", str(lo)).replace("HI", str(hi)),
                            f"{name}.cfc").compile() for name, (lo, hi) in BOXES.items()}


class Spy:
    """Counts the C loop's batches."""

    def __init__(self, monkeypatch):  # type: ignore[no-untyped-def]
        self.calls = 0
        advance = tronloop.TronLoop.advance

        def counted(loop, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.calls += 1
            return advance(loop, *args, **kwargs)

        monkeypatch.setattr(tronloop.TronLoop, "advance", counted)


def rows(result):  # type: ignore[no-untyped-def]
    records = result.result.trace.records
    return ([r.backtracks for r in records], [r.evaluations for r in records],
            np.array([r.step_size for r in records]), np.array([r.energy for r in records]))


def both(make, monkeypatch, **options):  # type: ignore[no-untyped-def]
    """(C loop run, Python loop run) of newton on fresh bindings of one problem, and the
    C loop against newton's Python trials around the C CG (a progress hook keeps the
    trials in Python): the same CG, so every trace row equal to round-off. The fully Python
    run's CG sums its dot products in another order: its rows drift apart by more along a
    run (1e-2 relative in the last step lengths), so it is held to `agree`."""
    spy = Spy(monkeypatch)
    fast, slow = on_and_off(make, monkeypatch, "newton", lambda: spy.calls, "the C loop",
                            **options)
    agree(fast, slow)
    monkeypatch.delenv("CFC_C_LOOPS")
    before = spy.calls
    mid = make().relax("newton", progress=lambda step, f, pg: None, **options)
    assert spy.calls == before
    (bt, ev, st, en), (bt2, ev2, st2, en2) = rows(fast), rows(mid)
    assert (fast.steps, fast.reason, bt, ev) == (mid.steps, mid.reason, bt2, ev2)
    np.testing.assert_allclose(st, st2, rtol=1e-9, atol=1e-13 * float(st.max()))
    np.testing.assert_allclose(en, en2, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(fast.x, mid.x, rtol=0, atol=1e-12)
    assert fast.result.evaluations == slow.result.evaluations == mid.result.evaluations
    return fast, slow


def wide(models, box: str, n: int, seed: int):  # type: ignore[no-untyped-def]
    """test_c_loop.workload's edges, started anywhere in the box."""
    rng = np.random.default_rng(seed)
    lo, hi = BOXES[box]
    return models[box].bind(sizes={"N": n}, init={"x": rng.uniform(lo, hi, n)}, data={
        "edges": rng.integers(0, n, (2 * n, 2)), "w": rng.uniform(0.1, 2.0, 2 * n),
        "hedges": rng.integers(0, n, (2 * n, 2)), "hw": rng.uniform(0.1, 2.0, 2 * n)})


@pytest.mark.parametrize("n, seed", [(100, 0), (1000, 0), (300, 3), (2000, 5)])
def test_the_c_loop_matches_the_python_loop(random_model, monkeypatch, n, seed) -> None:  # type: ignore[no-untyped-def]
    fast, _ = both(lambda: workload(random_model, n, seed), monkeypatch)
    assert fast.converged
    # the energy recorded is the backend's own at that state, to the bit (fsum in C)
    assert fast.energy == workload(random_model, n, seed).energy_and_grad(fast.x)[0]


CASES = [(box, n, seed) for box in BOXES for n, seed in [(50, 1), (400, 2), (1500, 4)]]


@pytest.mark.parametrize("box, n, seed", CASES)
def test_rejected_trials_and_cut_steps_agree(wide_models, monkeypatch, box, n, seed) -> None:  # type: ignore[no-untyped-def]
    both(lambda: wide(wide_models, box, n, seed), monkeypatch)


def test_the_workloads_take_every_branch(wide_models) -> None:  # type: ignore[no-untyped-def]
    """The problems above reach what the C loop must copy: rejected trials (the radius
    shrinks), a stall, and bounds the steps run into."""
    runs = {case: wide(wide_models, *case).relax("newton") for case in CASES}
    assert sum(r.backtracks for case, run in runs.items() if case[0] == "wide"
               for r in run.result.trace.records) > 0
    assert any(run.reason == "stalled" for run in runs.values())
    lo, hi = BOXES["tight"]
    assert all(np.any((run.x == lo) | (run.x == hi)) for case, run in runs.items()
               if case[0] == "tight")


@pytest.mark.parametrize("options", [
    {"options": {"max_cg": 2}}, {"options": {"cg_tol": 0.5}},
    {"options": {"precondition": False}}, {"options": {"max_subspace": 1}},
    {"options": {"eta1": 0.5, "eta2": 0.9}}, {"tol": 1e-3}, {"max_steps": 3},
    {"tol": 0.0}, {"ftol": 1e-4, "stall_steps": 2}])
def test_options_and_stops_agree(wide_models, monkeypatch, options) -> None:  # type: ignore[no-untyped-def]
    fast, _ = both(lambda: wide(wide_models, "wide", 300, 1), monkeypatch, **options)
    if "max_steps" in options:
        assert fast.steps == 3
    if options.get("tol") == 0.0 or "ftol" in options:
        assert fast.reason == "stalled"


def test_on_the_examples_and_a_saddle(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from test_c_cg import ROOT

    chain = cfc.load(ROOT / "examples" / "chain.cfc").compile()
    jitter = np.random.default_rng(1).uniform(-0.05, 0.05, 500)
    both(lambda: chain.bind(sizes={"N": 500}, init={"eta": 0.9 + jitter}), monkeypatch)
    dense = cfc.load(ROOT / "examples" / "seed_dense.cfc").compile()
    both(lambda: dense.bind(sizes={"N": 16}), monkeypatch)
    saddle = cfc.loads(SADDLE, "saddle.cfc").compile()  # an escape, then a fresh radius
    fast, _ = both(lambda: saddle.bind(init={"x": 0.3, "y": 0.0}), monkeypatch)
    assert fast.converged and abs(float(fast.values["y"])) == 1.0


def test_a_nonfinite_trial_is_the_same_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    source = """model log_domain
size N = 3
var x[N] in [0, 1] = 0.5
energy e(x) = log(x)
factor bad[i in 0..N] = e(x[i])
"""
    compiled = cfc.loads(source, "log_domain.cfc").compile()
    spy = Spy(monkeypatch)
    outcomes = []
    for env in ("1", "0"):
        monkeypatch.setenv("CFC_C_LOOPS", env)
        with pytest.raises(CfcError) as err:
            compiled.bind(init={"x": [0.5, 0.2, 0.9]}).relax("newton", max_steps=200)
        outcomes.append(err.value.message)
    assert spy.calls > 0
    assert outcomes[0] == outcomes[1]


def test_the_c_loop_steps_aside(random_model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Progress hooks and rejected-trial rows see each trial as it happens; a threaded
    family and a renumbering are not the one-call path the loop calls (its conditions are
    the CG loop's and pgd's loop's, test_c_cg.py, test_c_loop.py)."""
    spy = Spy(monkeypatch)
    problem = workload(random_model, 50)
    problem.relax("newton", progress=lambda step, f, pg: None)
    problem.relax("newton", progress=Observe(rejected=True))
    monkeypatch.setenv("CFC_REORDER", "rcm")
    renumbered = workload(random_model, 300, 2)
    assert renumbered.backend.layout.perm is not None
    renumbered.relax("newton")
    monkeypatch.delenv("CFC_REORDER")
    saved, problem.backend._all = problem.backend._all, None  # as a threaded family leaves it
    problem.relax("newton")
    problem.backend._all = saved
    assert spy.calls == 0
    problem.relax("newton")
    assert spy.calls > 0
    assert newton.TronLoop is tronloop.TronLoop
