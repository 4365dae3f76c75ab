"""The second-order test and the escapes it drives: no solver stops at a point it can tell
is not a local minimum. Oracles: closed-form Landau minima, the chain's known minimum E = -4
and its saddle at eta = 0 (smallest Hessian eigenvalue 2a, from NumPy's eigvalsh on a
finite-difference Hessian), the research seed scenarios, and L-BFGS-B on convex models.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

import cfc_dsl as cfc
from cfc_dsl.runtime.solvers.curvature import free_mask, lanczos, second_order_test
from cfc_dsl.runtime.solvers.registry import Needs, solver_names
from conftest import EXAMPLES, run_cfc

TINY = "model tiny\nvar x in [0, 1] = 0.9\nfactor f = landau(x; a = -0.5, b = 1)\n"
SOLVERS = solver_names()
PAIRS = """model pairs
size N = 400
data a[N]
data x0[N]
var x[N] in [0, 1]
init x[i in 0..N] = x0[i]
factor f[i in 0..N] = landau(x[i]; a = a[i], b = 1)
"""


@functools.cache
def compiled(text: str, name: str):  # type: ignore[no-untyped-def]
    return cfc.loads(text, name).compile(backend="c")


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("start", [0.9, 0.0, 1.0])
def test_tiny_landau_reaches_its_minimum(solver: str, start: float) -> None:
    problem = compiled(TINY, "tiny.cfc").bind()
    result = problem.relax(solver, x0=np.array([start]), max_steps=2000)
    assert float(result.x[0]) == pytest.approx(0.5, abs=1e-5), result.reason
    assert result.energy == pytest.approx(-0.0625, abs=1e-9)
    assert result.second_order is None or result.second_order["passed"]


def test_tiny_landau_on_the_command_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    path = tmp_path / "t.cfc"
    path.write_text(TINY)
    payload = json.loads(run_cfc("run", str(path), "--json").stdout)
    assert payload["x"]["x"] == pytest.approx(0.5, abs=1e-6)
    assert payload["energy"] == pytest.approx(-0.0625, abs=1e-12)
    assert payload["converged"] is True
    assert payload["second_order"]["passed"] is True
    assert payload["second_order"]["min_curvature"] == pytest.approx(2.0, rel=1e-6)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("start", [0.9, 0.0])
def test_chain_reaches_its_minimum(solver: str, start: float) -> None:
    problem = cfc.load(str(EXAMPLES / "chain.cfc")).compile(backend="c").bind()
    result = problem.relax(solver, x0=np.full(problem.bound.n, start), max_steps=5000)
    assert result.energy == pytest.approx(-4.0, abs=1e-7), result.reason


def _fd_hessian(problem, x: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    n, h = x.size, 1e-6
    rows = [(problem.energy_and_grad(x + h * e)[2] - problem.energy_and_grad(x - h * e)[2])
            / (2 * h) for e in np.eye(n)]
    return 0.5 * (np.array(rows) + np.array(rows).T)


def test_the_coupled_saddle_is_seen_and_escaped() -> None:
    problem = cfc.load(str(EXAMPLES / "chain.cfc")).compile(backend="c").bind(sizes={"N": 16})
    x = np.zeros(problem.bound.n)
    hess = _fd_hessian(problem, x)
    assert np.all(np.diag(hess) > 0)  # what a diagonal test would see
    assert np.linalg.eigvalsh(hess)[0] == pytest.approx(2 * -0.5, abs=1e-5)
    objective = problem.objective(Needs.HVP)
    g = problem.energy_and_grad(x)[2]
    check = second_order_test(objective, x, g, 1e-8, 15, 1e-6)
    assert not check.report.passed and check.direction is not None
    assert -1.0 - 1e-9 <= check.report.min_curvature < -0.9  # a Ritz value: >= lambda_min
    result = problem.relax("pgd", x0=x)
    assert result.converged and result.second_order["passed"]
    assert result.energy == pytest.approx(-0.0625 * 16, abs=1e-7)


def test_lanczos_finds_the_extreme_eigenvalues_of_a_matrix() -> None:
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    eig = np.linspace(-2.0, 5.0, 30)
    mat = q @ np.diag(eig) @ q.T
    theta, vectors, used = lanczos(lambda v: mat @ v, np.ones(30, bool), 30)
    assert used == 30 and theta[0] == pytest.approx(-2.0, abs=1e-9)
    assert theta[-1] == pytest.approx(5.0, abs=1e-9)
    assert np.linalg.norm(mat @ vectors[:, 0] - theta[0] * vectors[:, 0]) < 1e-8


def test_a_coordinate_at_a_bound_is_free_only_with_zero_gradient() -> None:
    lo, hi = np.zeros(4), np.ones(4)
    x, g = np.array([0.0, 0.0, 0.5, 1.0]), np.array([0.0, 2.0, 3.0, -1.0])
    assert free_mask(x, g, lo, hi, 1e-8).tolist() == [True, False, True, False]


def test_four_hundred_landau_pairs_end_at_the_closed_form_minimum() -> None:
    rng = np.random.default_rng(11)
    a = rng.uniform(-1.5, 1.0, 400)
    x0 = rng.uniform(0.0, 1.0, 400)
    x0[:40], x0[40:80] = 0.0, 1.0  # starts at both bounds
    best_x = np.where(a < 0, np.sqrt(np.maximum(-a, 0) / 2), 0.0)
    best_f = np.where(a < 0, -a * a / 4, 0.0)
    misses = 0
    for ai, xi, bx, bf in zip(a, x0, best_x, best_f, strict=True):
        p = compiled("model one\nparam a = 0\nvar x in [0, 1] = 0\n"
                     "factor f = landau(x; a = a, b = 1)\n", "one.cfc").bind(params={"a": ai})
        result = p.relax("pgd", x0=np.array([xi]))
        misses += not (abs(result.energy - bf) <= 1e-9 and abs(result.x[0] - bx) <= 1e-4)
    assert misses == 0
    pairs = compiled(PAIRS, "pairs.cfc").bind(data={"a": a, "x0": x0})
    for solver in ("pgd", "apg", "lbfgsb"):
        result = pairs.relax(solver, max_steps=5000)
        assert result.energy == pytest.approx(float(best_f.sum()), abs=1e-8), solver
        np.testing.assert_allclose(result.x, best_x, atol=1e-4)


@pytest.mark.parametrize("solver", ["pgd", "apg", "lbfgsb"])
@pytest.mark.parametrize("example, best", [("seed_baseline", -0.0025076),
                                           ("seed_dense", -0.010651)])
def test_seed_scenarios(solver: str, example: str, best: float) -> None:
    problem = cfc.load(str(EXAMPLES / f"{example}.cfc")).compile(backend="c").bind()
    result = problem.relax(solver)
    assert result.energy == pytest.approx(best, abs=1e-6)
    assert result.energy <= result.energy_initial


CONVEX = """model convex
size N = 12
data edges[M, 2] : int
data a[N]
data t[N]
data w[M]
var x[N] in [-1, 2] = 0.5
factor own[i in 0..N] = compression(x[i]; a = a[i], b = 0.5, t = t[i])
factor link[e in 0..M] = quadratic(x[edges[e, 0]], x[edges[e, 1]]; w = w[e])
"""


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("solver", ["pgd", "apg"])
def test_convex_models_reach_the_lbfgsb_minimum(seed: int, solver: str) -> None:
    rng = np.random.default_rng(seed)
    edges = rng.integers(0, 12, (20, 2))
    edges = edges[edges[:, 0] != edges[:, 1]]
    data = {"edges": edges, "a": rng.uniform(0.1, 2.0, 12), "t": rng.uniform(-2.0, 3.0, 12),
            "w": rng.uniform(0.0, 2.0, len(edges))}
    problem = compiled(CONVEX, "convex.cfc").bind(data=data)
    reference = problem.relax("lbfgsb", tol=1e-12, max_steps=5000).energy
    ours = problem.relax(solver, tol=1e-10, max_steps=20000).energy
    assert math.isclose(ours, reference, rel_tol=1e-8, abs_tol=1e-12) or ours < reference
