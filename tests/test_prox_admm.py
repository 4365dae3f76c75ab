"""`prox`, `admm` and `auto`: each closed-form prox against scipy's minimiser of the prox
objective on the box, both solvers against L-BFGS-B on random convex models, the research
code's failing ADMM case (SEED_SPEC 3.14), a kink that stalls pgd, and monotone states."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from scipy.optimize import minimize

import cfc_dsl as cfc
from cfc_dsl.runtime.solvers.proxrules import RULES, colour_classes

# ------------------------------------------------------------------ the closed forms
PARAMS = {"quadratic": lambda r: (),
          "directed_hinge": lambda r: (),
          "asym_hinge": lambda r: (r.uniform(-2, 2), r.uniform(-2, 2)),
          "margin_hinge": lambda r: (r.uniform(-0.2, 0.6),)}


@pytest.mark.parametrize("energy", sorted(RULES))
def test_prox_matches_scipy_on_the_box(energy: str) -> None:
    rule, rng = RULES[energy], np.random.default_rng(7)
    for _ in range(60):
        p = tuple(np.array([v]) for v in (1.0, *PARAMS[energy](rng)))
        lo = rng.uniform(-1, 0.5, 2)
        hi = lo + rng.uniform(0.05, 1.5, 2)
        x0, y0 = rng.uniform(-1.5, 2.0, 2)
        k = rng.uniform(0.0, 3.0)

        def objective(z: np.ndarray, p: tuple = p, k: float = k, x0: float = x0,
                      y0: float = y0) -> float:
            phi = rule.phi(np.array([z[0]]), np.array([z[1]]), p)[0]
            return k * phi + 0.5 * ((z[0] - x0) ** 2 + (z[1] - y0) ** 2)

        ours = rule.prox(np.array([x0]), np.array([y0]), np.array([k]), p,
                         (lo[:1], hi[:1], lo[1:], hi[1:]))
        point = np.array([ours[0][0], ours[1][0]])
        assert np.all(point >= lo - 1e-15) and np.all(point <= hi + 1e-15)
        best = min((minimize(objective, np.clip(start, lo, hi), method="Powell",
                             bounds=list(zip(lo, hi, strict=True)),
                             options={"xtol": 1e-12, "ftol": 1e-15})
                    for start in ([x0, y0], (lo + hi) / 2, lo, hi)), key=lambda r: r.fun)
        assert objective(point) <= best.fun + 1e-10
        # the prox objective is 1-strongly convex: scipy's point, d above the minimum in
        # value, lies within sqrt(2d) of it (Powell is slow at a kink)
        gap = max(best.fun - objective(point), 0.0)
        assert np.linalg.norm(point - best.x) <= np.sqrt(2 * gap) + 1e-6


def test_colour_classes_never_repeat_a_variable() -> None:
    rng = np.random.default_rng(1)
    u, v = rng.integers(0, 50, 400), rng.integers(0, 50, 400)
    classes = colour_classes(u, v)
    seen = np.concatenate(classes)
    assert sorted(seen) == sorted(np.flatnonzero(u != v))
    for members in classes:
        ends = np.concatenate([u[members], v[members]])
        assert np.unique(ends).size == ends.size


def test_colour_classes_of_a_chain_are_few() -> None:
    """A path needs 2 classes; each class is a maximal matching, so at most 2*deg - 1 = 3.
    (Priorities by instance number gave one class per edge, and prox quadratic time.)"""
    u = np.arange(999)
    classes = colour_classes(u, u + 1)
    assert len(classes) <= 3
    assert sorted(np.concatenate(classes)) == list(range(999))


# ------------------------------------------------------------------ random convex models
CONVEX = """\
model convex
size N = 6
data edges[M, 2] : int
data local[N, 2]
data pw[M, 4]
data x0[N]
var x[N] in [0, 1]
init x[i in 0..N] = x0[i]
factor pull[i in 0..N]  = compression(x[i]; a = local[i, 0], t = local[i, 1])
factor quad[e in 0..M]  = quadratic(x[edges[e, 0]], x[edges[e, 1]]; w = pw[e, 0])
factor dh[e in 0..M]    = directed_hinge(x[edges[e, 0]], x[edges[e, 1]]; w = pw[e, 1])
factor ah[e in 0..M]    = asym_hinge(x[edges[e, 1]], x[edges[e, 0]]; w = pw[e, 2],
                                     alpha = 0.7, beta = 1.3)
factor gain[i in 0..N]  = gate_benefit(x[i]; w = 1, delta = local[i, 0] - 0.6)
"""


@functools.cache
def convex_compiled():  # type: ignore[no-untyped-def]
    return cfc.loads(CONVEX, "convex.cfc").compile(backend="c")


def convex_problem(seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 12))
    m = int(rng.integers(1, 3 * n))
    edges = np.array([rng.choice(n, 2, replace=False) for _ in range(m)], dtype=np.int64)
    return convex_compiled().bind(sizes={"N": n}, data={
        "edges": edges, "local": np.column_stack([rng.uniform(0.05, 2, n), rng.uniform(-0.5, 1.5, n)]),
        "pw": rng.uniform(0, 3, (m, 4)), "x0": rng.uniform(0, 1, n)})


@pytest.mark.parametrize("solver", ["prox", "admm"])
def test_reaches_lbfgsb_minimum_on_random_convex_models(solver: str) -> None:
    for seed in range(12):
        problem = convex_problem(seed)
        reference = problem.relax("lbfgsb", tol=1e-12, max_steps=5000).energy
        result = problem.relax(solver, max_steps=5000)
        assert result.energy <= reference + 1e-8 * max(1.0, abs(reference)), (seed, result)


# ------------------------------------------------------------------ SEED_SPEC 3.14
SEQ_GATE = """\
model seq_gate
var seq in [0, 1] = 0.9
var gate in [0, 1] = 0.1
factor seq_local  = order(seq; a = 1, b = 1)
factor gate_local = gate_local(gate; a = 0.1, b = 0.1)
factor hinge      = directed_hinge(seq, gate; w = 1)
"""


@pytest.mark.parametrize("start", [(0.9, 0.1), (0.3, 0.7)])
def test_admm_solves_the_research_codes_failing_case(start: tuple[float, float]) -> None:
    problem = cfc.loads(SEQ_GATE, "seq_gate.cfc").compile().bind()
    x0 = {"seq": start[0], "gate": start[1]}
    gradient = problem.relax("pgd", x0).energy
    result = problem.relax("admm", x0)
    assert result.energy <= gradient + 1e-10
    assert result.energy < 1e-12  # the minimum is 0 at seq = 1, gate = 0
    assert result.energy <= result.energy_initial


# ------------------------------------------------------------------ kinks
KINK = """\
model kink
var x in [0, 1] = 0.2
var y in [0, 1] = 0.9
var z in [0, 1] = 0.9
factor px   = compression(x; a = 1, t = 1)
factor py   = compression(y; a = 1, t = 0)
factor tie  = margin_hinge(x, y; w = 3, m = 0.05)
factor link = quadratic(y, z; w = 0.5)
factor pz   = compression(z; a = 1, t = 0.2)
"""


def kink_reference() -> float:
    """The minimum by SLSQP on the epigraph form (|x - y| - m <= t, t >= 0)."""
    def f(v: np.ndarray) -> float:
        x, y, z, t = v
        return (x - 1) ** 2 + y ** 2 + 3 * t + 0.5 * (y - z) ** 2 + (z - 0.2) ** 2

    cons = [{"type": "ineq", "fun": lambda v: v[3] - (v[0] - v[1] - 0.05)},
            {"type": "ineq", "fun": lambda v: v[3] - (v[1] - v[0] - 0.05)}]
    out = minimize(f, [0.5, 0.5, 0.5, 0.1], method="SLSQP", constraints=cons,
                   bounds=[(0, 1)] * 3 + [(0, None)], options={"ftol": 1e-14, "maxiter": 500})
    return float(out.fun)


def test_auto_routes_a_kink_to_prox_and_reaches_the_minimum() -> None:
    problem = cfc.loads(KINK, "kink.cfc").compile().bind()
    best = kink_reference()
    result = problem.relax()  # auto
    assert result.result.solver == "prox" and "tie" in (result.result.auto or "")
    assert result.energy <= best + 1e-9
    pgd = problem.relax("pgd")
    assert result.energy <= pgd.energy + 1e-12
    assert problem.relax("prox").energy <= best + 1e-9


@pytest.mark.parametrize("solver", ["prox", "admm", "auto"])
def test_monotone_returned_state(solver: str) -> None:
    for seed in range(4):
        problem = convex_problem(100 + seed)
        result = problem.relax(solver, max_steps=300)
        energies = result.trace["energy"].to_list()
        assert energies[0] == result.energy_initial and energies[-1] == result.energy
        assert all(b <= a for a, b in itertools.pairwise(energies))
        assert problem.energy(result.x)[0] == pytest.approx(result.energy, rel=1e-12, abs=1e-15)
        assert np.all(result.x >= problem.lower) and np.all(result.x <= problem.upper)


def test_auto_says_what_it_chose(tmp_path) -> None:  # type: ignore[no-untyped-def]
    problem = cfc.load("examples/seed_baseline.cfc").compile().bind()
    result = problem.relax()
    assert result.result.solver != "auto" and result.result.auto
    assert result.energy == pytest.approx(-0.0025076, abs=1e-7)


def test_the_stdlib_kink_table_matches_the_derived_expressions() -> None:
    from cfc_dsl.derive import derive_energy, symbol
    from cfc_dsl.runtime.solvers.auto import KINKED_STDLIB
    from cfc_dsl.runtime.solvers.proxrules import has_kink

    model = cfc.loads("model m\nvar x in [0, 1]\nfactor f = landau(x; a = 1, b = 1)\n", "m.cfc")
    specs = {e.name: e for e in model.energies}
    derived = {n: has_kink(derive_energy(s, specs).expr, {symbol(v) for v in s.slots})
               for n, s in specs.items() if s.builtin}
    assert {n for n, k in derived.items() if k} == KINKED_STDLIB


def test_a_user_energy_with_abs_is_routed_to_prox() -> None:
    source = ("model m\nvar x in [0, 1] = 0.9\nvar y in [0, 1] = 0.1\n"
              "energy tie(x, y; w = 1) = w * abs(x - y)\n"
              "factor t = tie(x, y; w = 2)\nfactor p = compression(x; a = 1, t = 1)\n")
    result = cfc.loads(source, "m.cfc").compile().bind().relax()
    assert result.result.solver == "prox"
