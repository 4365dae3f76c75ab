"""The trust-region Newton-CG (`newton`) and coloured block coordinate descent (`cd`)
solvers: known minima (Landau, the chain, the seed scenarios), L-BFGS-B's minimum on random
convex models as the independent oracle, newton's step count on long chains and grids, a
valid colouring, and cd's monotone sweeps."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import scipy.optimize

import cfc_dsl as cfc
from cfc_dsl.runtime.solvers.cd import colour_classes, interaction_graph
from cfc_dsl.runtime.solvers.registry import Needs, solver_names
from conftest import EXAMPLES

SOLVERS = ("newton", "cd")
BACKEND = "python"  # the reference backend generates Hessian-vector products everywhere

TINY = "model tiny\nvar x in [0, 1] = 0.9\nfactor f = landau(x; a = -0.5, b = 1)\n"


@functools.cache
def compiled(path: str):  # type: ignore[no-untyped-def]
    return cfc.load(EXAMPLES / path).compile(backend=BACKEND)


def lbfgsb_minimum(problem, x0: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    """SciPy's L-BFGS-B on the problem's own energy and gradient, tightly converged."""
    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        f, _, g = problem.energy_and_grad(x)
        return f, g

    res = scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B",
                                  bounds=list(zip(problem.lower, problem.upper, strict=True)),
                                  options={"ftol": 1e-16, "gtol": 1e-13, "maxiter": 20000})
    return float(res.fun)


def test_registered_with_their_needs() -> None:
    names = solver_names()
    assert "newton" in names and "cd" in names
    from cfc_dsl.runtime.solvers.registry import solver_class

    for name, needs in (("newton", Needs.HVP), ("cd", Needs.HVP | Needs.INSTANCES)):
        cls = solver_class(name)
        assert needs in cls().needs(cls.Options())


@pytest.mark.parametrize("solver", SOLVERS)
def test_landau_from_inside_the_box(solver: str) -> None:
    """The issue's case: from 0.9 the minimum is x = 0.5, F = -0.0625 (not the maximum 0)."""
    problem = cfc.loads(TINY, "tiny.cfc").compile(backend=BACKEND).bind()
    r = problem.relax(solver)
    assert r.converged, r.reason
    assert r.x[0] == pytest.approx(0.5, abs=1e-7)
    assert r.energy == pytest.approx(-0.0625, abs=1e-12)
    assert r.result.second_order is not None and r.result.second_order.passed


@pytest.mark.parametrize("solver", SOLVERS)
def test_chain_from_09_reaches_minus_4(solver: str) -> None:
    problem = compiled("chain.cfc").bind()
    r = problem.relax(solver, x0=np.full(64, 0.9))
    assert r.converged, r.reason
    assert r.energy == pytest.approx(-4.0, abs=1e-10)
    assert r.energy <= r.energy_initial


def newton_iterations(r) -> int:  # type: ignore[no-untyped-def]
    """Accepted steps plus the trust-region trials rejected before them (`backtracks`)."""
    return r.steps + int(r.trace["backtracks"].sum())


def test_newton_long_chain_in_tens_of_steps() -> None:
    n = 10_000
    problem = compiled("chain.cfc").bind(sizes={"N": n})
    r = problem.relax("newton", x0=np.full(n, 0.9))
    assert r.converged, r.reason
    assert newton_iterations(r) <= 50
    assert r.energy == pytest.approx(-0.0625 * n, rel=1e-12)


@pytest.mark.parametrize("a", [0.3, -0.5])
def test_newton_64x64_grid_in_tens_of_steps(a: float) -> None:
    L = 64
    shortcuts = np.random.default_rng(0).integers(0, L * L, size=(64, 2)).astype(np.int64)
    problem = compiled("grid_percolation.cfc").bind(sizes={"L": L}, params={"a": a},
                                                    data={"shortcuts": shortcuts})
    r = problem.relax("newton", x0=np.full(L * L, 0.9))
    assert r.converged, r.reason
    assert newton_iterations(r) <= 50
    assert r.energy == pytest.approx(lbfgsb_minimum(problem, np.full(L * L, 0.9)), rel=1e-8)


# ------------------------------------------------------------------ random models
def random_source(convex: bool) -> str:
    """A Landau-or-compression term per variable and quadratic plus hinge edges, with every
    parameter a data column (one compile serves all seeds)."""
    unary = ("compression(eta[i]; a = pu[i, 0], b = pu[i, 1], t = pu[i, 2])" if convex else
             "landau(eta[i]; a = pu[i, 0] - 0.5, b = pu[i, 1], h = pu[i, 2] - 0.5)")
    hinge = ("directed_hinge(eta[edges[e, 0]], eta[edges[e, 1]]; w = pe[e, 1])" if convex
             else "margin_hinge(eta[edges[e, 0]], eta[edges[e, 1]]; w = pe[e, 1], m = 0.1)")
    return "\n".join([
        "model random_model", "size N = 4", "data edges[M, 2] : int", "data x0[N]",
        "data pu[N, 3]", "data pe[M, 2]", "var eta[N] in [-1, 1]",
        "init eta[i in 0..N] = x0[i]",
        f"factor unary[i in 0..N] = {unary}",
        "factor couple[e in 0..M] = quadratic(eta[edges[e, 0]], eta[edges[e, 1]]; w = pe[e, 0])",
        f"factor hinge[e in 0..M] = {hinge}",
        "factor push[i in 0..N] = gate_benefit(eta[i]; w = 1, delta = pu[i, 2] - 0.5)",
    ]) + "\n"


@functools.cache
def random_compiled(convex: bool):  # type: ignore[no-untyped-def]
    return cfc.loads(random_source(convex), "random_model.cfc").compile(backend=BACKEND)


def random_problem(seed: int, convex: bool, n: int = 12, m: int = 24):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    edges = rng.integers(0, n, size=(m, 2)).astype(np.int64)
    x0 = rng.choice([-1.0, 0.0, 1.0, 0.5], size=n)  # starts at bounds and at 0 included
    pu = np.column_stack([rng.uniform(0.2, 1.5, n), rng.uniform(0.0, 1.0, n),
                          rng.uniform(-0.5, 1.5, n)])
    pe = rng.uniform(0.0, 1.0, size=(m, 2))
    return random_compiled(convex).bind(sizes={"N": n}, data={
        "edges": edges, "x0": x0, "pu": pu, "pe": pe})


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("seed", range(6))
def test_random_convex_models_reach_lbfgsb_minimum(solver: str, seed: int) -> None:
    problem = random_problem(seed, convex=True)
    r = problem.relax(solver, max_steps=5000)
    reference = lbfgsb_minimum(problem, problem.bound.x0)
    assert r.energy <= r.energy_initial
    assert r.energy == pytest.approx(reference, rel=1e-8, abs=1e-12)
    assert r.reason in ("converged", "stalled"), r.reason


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("seed", range(6))
def test_monotone_on_nonsmooth_models(solver: str, seed: int) -> None:
    """Non-convex random models with margin hinges (kinks): no cd sweep and no newton step
    raises F."""
    problem = random_problem(seed, convex=False)
    r = problem.relax(solver, max_steps=200)
    energies = np.array(r.trace["energy"])
    assert np.all(np.diff(energies) <= 0.0)
    assert r.energy <= r.energy_initial


@pytest.mark.parametrize("seed", range(4))
def test_colouring_is_valid(seed: int) -> None:
    """No factor instance holds two distinct variables of one colour; every variable has one."""
    problem = random_problem(seed, convex=False, n=30, m=80)
    instances = problem.objective(Needs.INSTANCES).instances()
    classes = colour_classes(interaction_graph(instances, problem.bound.n))
    colour = np.full(problem.bound.n, -1)
    for c, members in enumerate(classes):
        assert np.all(colour[members] == -1)
        colour[members] = c
    assert np.all(colour >= 0)
    for slots in instances:
        for a in range(len(slots)):
            for b in range(a + 1, len(slots)):
                distinct = slots[a] != slots[b]
                assert np.all(colour[slots[a][distinct]] != colour[slots[b][distinct]])
    # the same graph colours the same way every time
    again = colour_classes(interaction_graph(instances, problem.bound.n))
    assert all(np.array_equal(p, q) for p, q in zip(classes, again, strict=True))


def test_chain_is_two_coloured() -> None:
    problem = compiled("chain.cfc").bind()
    instances = problem.objective(Needs.INSTANCES).instances()
    classes = colour_classes(interaction_graph(instances, problem.bound.n))
    assert len(classes) == 2


def test_instances_need_declaring() -> None:
    problem = compiled("chain.cfc").bind()
    with pytest.raises(RuntimeError, match="Needs.INSTANCES"):
        problem.objective(Needs.NONE).instances()


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(("path", "minimum"), [("seed_baseline.cfc", -0.0025076),
                                               ("seed_dense.cfc", -0.010651)])
def test_seed_scenarios(solver: str, path: str, minimum: float) -> None:
    r = compiled(path).bind().relax(solver)
    assert r.converged, r.reason
    assert r.energy == pytest.approx(minimum, abs=5e-7)
