"""The second-order test's Lanczos steps in C (runtime/solvers/clanczos.py) against its
Python steps (`curvature._steps`): each C call against the Python steps on the very same
inputs (the same step count and finiteness, alphas, betas and basis equal to round-off: the
dot products sum in another order), whole runs alike with the C loops on and off on the
standard workload, a saddle the test must fail and escape, a Hessian that is not finite,
and the fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
from test_c_loop import RANDOM, SADDLE, agree, on_and_off, workload

import cfc_dsl as cfc
from cfc_dsl.runtime.solvers import base as solver_base
from cfc_dsl.runtime.solvers import clanczos, curvature
from cfc_dsl.runtime.solvers.registry import Needs
from conftest import EXAMPLES

# x^(3/2) on [0, 1]: at x = 0 the gradient is 0 (the coordinate is free) and the
# Hessian 3/(4 sqrt(x)) is infinite
ROOT_POWER = """model root_power
size N = 2
var x[N] in [0, 1] = 0.5
energy e(x) = x * sqrt(x)
factor f[i in 0..N] = e(x[i])
"""


@pytest.fixture(scope="module")
def random_model():  # type: ignore[no-untyped-def]
    return cfc.loads(RANDOM, "random.cfc").compile()


def _same_steps(fast, slow) -> None:  # type: ignore[no-untyped-def]
    alphas, betas, basis, m, finite = fast
    p_alphas, p_betas, p_basis, p_m, p_finite = slow
    assert (m, finite) == (p_m, p_finite)
    assert len(alphas) == len(p_alphas) and len(betas) == len(p_betas)
    if finite:
        scale = max(1.0, float(np.max(np.abs(p_alphas))))
        np.testing.assert_allclose(alphas, p_alphas, rtol=0, atol=1e-12 * scale)
        np.testing.assert_allclose(betas, p_betas, rtol=0, atol=1e-12 * scale)
        np.testing.assert_allclose(basis[:m], p_basis[:m], rtol=0, atol=1e-10)


class Checked:
    """Runs the Python steps beside every C call on the same inputs and compares; records
    every second-order report the solvers get."""

    def __init__(self, monkeypatch) -> None:  # type: ignore[no-untyped-def]
        self.calls, self.reports = 0, []
        orig = clanczos.LanczosLoop.steps

        def checked(loop, x, mask, q, k):  # type: ignore[no-untyped-def]
            found = orig(loop, x, mask, q, k)
            hv = curvature.hessian_product(loop.objective, x)
            _same_steps(found, curvature._steps(hv, mask, q.copy(), k))
            self.calls += 1
            return found

        monkeypatch.setattr(clanczos.LanczosLoop, "steps", checked)
        test = solver_base.second_order_test

        def recorded(*args, **kwargs):  # type: ignore[no-untyped-def]
            check = test(*args, **kwargs)
            self.reports.append(check.report)
            return check

        monkeypatch.setattr(solver_base, "second_order_test", recorded)


def both(make, monkeypatch, solver: str = "newton", **options):  # type: ignore[no-untyped-def]
    """(C Lanczos run, Python Lanczos run) of `solver` on fresh bindings, and the spy."""
    spy = Checked(monkeypatch)
    fast, slow = on_and_off(make, monkeypatch, solver, lambda: spy.calls,
                            "the C Lanczos loop", **options)
    return fast, slow, spy


def _same_report(fast, slow) -> None:  # type: ignore[no-untyped-def]
    """The verdicts of two runs whose final points agree to round-off (pgd's and newton's
    own loops run in C or not with the Lanczos loop): the smallest Ritz value is compared
    on one point by the spy and below, not here, where a coordinate at a bound whose
    gradient is near the tolerance may be free in one run only."""
    a, b = fast.second_order, slow.second_order
    assert a["passed"] == b["passed"] and a["lanczos_steps"] == b["lanczos_steps"]


@pytest.mark.parametrize("solver", ["newton", "pgd", "lbfgsb"])
@pytest.mark.parametrize("n, seed", [(100, 0), (1000, 0), (300, 3)])
def test_c_lanczos_matches_the_python_steps(random_model, monkeypatch, solver: str, n: int,
                                            seed: int) -> None:  # type: ignore[no-untyped-def]
    fast, slow, _ = both(lambda: workload(random_model, n, seed), monkeypatch, solver)
    agree(fast, slow)
    _same_report(fast, slow)


def test_the_second_order_test_alike_on_the_same_point(random_model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """At one point, C loop on and off: the same report (Ritz value to round-off) and the
    same direction up to sign, on the workload and at the chain's saddle (which fails)."""
    chain = cfc.load(str(EXAMPLES / "chain.cfc")).compile(backend="c").bind(sizes={"N": 16})
    inside = np.random.default_rng(4).uniform(0, 1, 400)
    pinned = inside.copy()
    pinned[:150] = 1.0  # at the upper bound, pulled inward by their edges: not free
    cases = [(workload(random_model, 400, 4), inside), (workload(random_model, 400, 4), pinned),
             (chain, np.zeros(chain.bound.n))]
    for problem, x in cases:
        monkeypatch.delenv("CFC_C_LOOPS", raising=False)
        objective = problem.objective(Needs.HVP)
        assert clanczos.LanczosLoop.for_objective(objective) is not None
        g = problem.energy_and_grad(x)[2]
        mask = curvature.free_mask(x, g, objective.lower, objective.upper, 1e-8)
        assert mask.all() == (x is not pinned)
        checks = []
        for env in ("1", "0"):
            monkeypatch.setenv("CFC_C_LOOPS", env)
            checks.append(curvature.second_order_test(objective, x, g, 1e-8, 15, 1e-6))
        fast, slow = checks
        assert fast.report.passed == slow.report.passed
        assert fast.report.lanczos_steps == slow.report.lanczos_steps
        assert fast.report.min_curvature == pytest.approx(slow.report.min_curvature,
                                                          rel=1e-12, abs=1e-14)
        assert (fast.direction is None) == (slow.direction is None)
        if fast.direction is not None:
            assert abs(float(fast.direction @ slow.direction)) == pytest.approx(1.0, abs=1e-9)
    assert not fast.report.passed  # the chain's saddle: lambda_min = 2a = -1
    assert -1.0 - 1e-9 <= fast.report.min_curvature < -0.9


def test_c_lanczos_sees_and_escapes_a_saddle(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    compiled = cfc.loads(SADDLE, "saddle.cfc").compile()
    fast, slow, spy = both(lambda: compiled.bind(init={"x": 0.3, "y": 0.0}), monkeypatch,
                           "pgd")
    agree(fast, slow)
    _same_report(fast, slow)
    assert fast.converged and fast.second_order["passed"]
    assert abs(float(fast.values["y"])) == 1.0  # left the saddle at y = 0 for a corner
    reports = spy.reports[:len(spy.reports) // 2]  # the C run's (both runs test alike)
    assert reports and not reports[0].passed and reports[0].min_curvature < 0


def test_a_hessian_that_is_not_finite(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """x^(3/2) at 0: the first product is not finite; C and Python stop at that step, and
    the test goes on to the same probe."""
    problem = cfc.loads(ROOT_POWER, "root_power.cfc").compile().bind()
    objective = problem.objective(Needs.HVP)
    loop = clanczos.LanczosLoop.for_objective(objective)
    assert loop is not None
    x = np.array([0.0, 0.5])
    g = problem.energy_and_grad(x)[2]
    mask = curvature.free_mask(x, g, objective.lower, objective.upper, 1e-8)
    assert mask.all()
    q = np.ones(2) / np.sqrt(2.0)
    fast = loop.steps(x, mask, q, 2)
    assert fast[3:] == (1, False) and loop.products == 1
    _same_steps(fast, curvature._steps(curvature.hessian_product(objective, x), mask, q, 2))
    checks = []
    for env in ("1", "0"):
        monkeypatch.setenv("CFC_C_LOOPS", env)
        checks.append(curvature.second_order_test(objective, x, g, 1e-8, 15, 1e-6).report)
    assert checks[0] == checks[1] or (checks[0].passed == checks[1].passed
                                      and checks[0].lanczos_steps == checks[1].lanczos_steps)


def test_c_lanczos_steps_aside(random_model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An objective without HVP (finite differences), another objective, a renumbering and
    CFC_C_LOOPS=0 keep the Python steps (cgloop.objective_tables, whose other cases
    tests/test_c_cg.py covers)."""
    problem = workload(random_model, 100)
    assert clanczos.LanczosLoop.for_objective(problem.objective(Needs.HVP)) is not None
    assert clanczos.LanczosLoop.for_objective(problem.objective(Needs.NONE)) is None
    assert clanczos.LanczosLoop.for_objective(object()) is None
    monkeypatch.setenv("CFC_C_LOOPS", "0")
    assert clanczos.LanczosLoop.for_objective(problem.objective(Needs.HVP)) is None
    monkeypatch.delenv("CFC_C_LOOPS")
    monkeypatch.setenv("CFC_REORDER", "rcm")
    renumbered = workload(random_model, 300, 2)
    assert clanczos.LanczosLoop.for_objective(renumbered.objective(Needs.HVP)) is None
