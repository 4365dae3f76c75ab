"""newton's Jacobi preconditioner and the BLAS-free vector algebra (issue 12): with and
without `precondition` it reaches the same minimum, SciPy's L-BFGS-B's on convex models;
on a graph with uneven degrees the preconditioned CG needs fewer kernel passes; the
second-order test's single Ritz vector is the full Lanczos run's first; `vectors.dot` and
`norm` agree with NumPy's to round-off and are deterministic."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.optimize

import cfc_dsl as cfc
from cfc_dsl.runtime.solvers.curvature import lanczos
from cfc_dsl.runtime.solvers.vectors import dot, norm

SOURCE = """\
model uneven
size N = 10
var x[N] in [0, 1] = 0.5
data edges[M, 2] : int
data w[M]
data x0[N]
init x[i in 0..N] = x0[i]
factor local[i in 0..N] = landau(x[i]; a = -0.5, b = 1.0)
factor quad[e in 0..M] = quadratic(x[edges[e, 0]], x[edges[e, 1]]; w = w[e])
"""


class Counting:
    """The backend with every kernel pass counted (energy, gradient, HVP, diagonal)."""

    def __init__(self, backend: Any):
        self.inner, self.passes = backend, 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name in ("energy", "energy_and_grad", "hvp", "hess_diag"):
            def counted(*args: Any, **kwargs: Any) -> Any:
                self.passes += 1
                return attr(*args, **kwargs)
            return counted
        return attr


def uneven_problem(seed: int, n: int = 400) -> Any:
    """A random graph whose degrees range from 1 to ~n/10 (hubs), weights over two decades:
    the Hessian's diagonal is far from constant, where Jacobi scaling pays."""
    rng = np.random.default_rng(seed)
    hubs = rng.integers(0, n // 20, 4 * n)
    edges = np.column_stack([hubs, rng.integers(0, n, 4 * n)])
    edges = np.vstack([edges, np.column_stack([np.arange(n - 1), np.arange(1, n)])])
    w = 10.0 ** rng.uniform(-1.0, 1.0, len(edges))
    model = cfc.loads(SOURCE, "uneven.cfc").compile()
    return model.bind(sizes={"N": n}, data={"edges": edges.astype(np.int64), "w": w,
                                            "x0": rng.uniform(0.0, 1.0, n)})


def run(problem: Any, **options: Any) -> tuple[Any, int]:
    counting = Counting(problem.backend)
    problem.backend = counting
    try:
        r = problem.relax("newton", **options)
    finally:
        problem.backend = counting.inner
    return r, counting.passes


@pytest.mark.parametrize("seed", range(3))
def test_preconditioned_newton_same_minimum_fewer_passes(seed: int) -> None:
    problem = uneven_problem(seed)
    plain, plain_passes = run(problem, precondition=False)
    jacobi, jacobi_passes = run(problem)
    assert plain.converged and jacobi.converged
    assert jacobi.energy <= jacobi.energy_initial
    assert jacobi.energy == pytest.approx(plain.energy, rel=1e-10, abs=1e-10)
    assert np.max(np.abs(jacobi.x - plain.x)) < 1e-6
    assert jacobi_passes < plain_passes, (jacobi_passes, plain_passes)


def test_preconditioned_newton_reaches_lbfgsb_minimum_on_a_convex_model() -> None:
    source = SOURCE.replace("landau(x[i]; a = -0.5, b = 1.0)", "landau(x[i]; a = 0.5, b = 1.0)")
    rng = np.random.default_rng(7)
    n = 200
    edges = np.column_stack([rng.integers(0, 10, 3 * n), rng.integers(0, n, 3 * n)])
    problem = cfc.loads(source, "convex.cfc").compile().bind(sizes={"N": n}, data={
        "edges": edges.astype(np.int64), "w": 10.0 ** rng.uniform(-1, 1, 3 * n),
        "x0": rng.uniform(0.0, 1.0, n)})
    r = problem.relax("newton")

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        f, _, g = problem.energy_and_grad(x)
        return f, g

    ref = scipy.optimize.minimize(fun, problem.bound.x0, jac=True, method="L-BFGS-B",
                                  bounds=list(zip(problem.lower, problem.upper, strict=True)),
                                  options={"ftol": 1e-16, "gtol": 1e-13, "maxiter": 20000})
    assert r.converged
    assert r.energy == pytest.approx(float(ref.fun), rel=1e-9, abs=1e-12)


def test_one_ritz_vector_is_the_first_of_all() -> None:
    rng = np.random.default_rng(5)
    q, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    mat = q @ np.diag(np.linspace(-1.0, 3.0, 40)) @ q.T
    mask = np.ones(40, bool)
    theta, every, used = lanczos(lambda v: mat @ v, mask, 12)
    theta1, first, used1 = lanczos(lambda v: mat @ v, mask, 12, vectors=1)
    assert used == used1 == 12 and first.shape == (40, 1) and every.shape == (40, 12)
    assert np.array_equal(theta, theta1) and np.array_equal(first[:, 0], every[:, 0])


def test_dot_and_norm_match_numpy_and_repeat_exactly() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(100_003), rng.standard_normal(100_003)
    assert dot(a, b) == pytest.approx(float(np.dot(a, b)), rel=1e-12, abs=1e-9)
    assert norm(a) == pytest.approx(float(np.linalg.norm(a)), rel=1e-13)
    assert all(dot(a, b) == dot(a, b) for _ in range(5))
    assert dot(a[:0], b[:0]) == 0.0 and norm(a[:0]) == 0.0
