"""Each standard-library energy's compiled gradient matches central finite differences.

The gradient comes from the C backend through `Problem.evaluate`; the finite differences
are taken on the family's weighted energy. Points within 1e-4 of a kink of a piecewise
energy (relu, abs) are skipped; a second set of points sits deliberately close to (but
not within 1e-4 of) the kinks.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_parity import STDLIB_CASES, stdlib_data, stdlib_source

import cfc_dsl as cfc
from cfc_dsl.runtime.backends.native import BackendKind

RTOL = 1e-6
H = 1e-5  # central-difference step
KINK_SKIP = 1e-4
INSIDE = 0.01  # keep points (and the finite-difference steps) this far inside the bounds


def kink_distance(case: str, x: np.ndarray, y: np.ndarray | None,
                  p: dict[str, np.ndarray]) -> np.ndarray:
    """Per instance, how far the arguments are from the nearest kink (inf: smooth)."""
    energy = STDLIB_CASES[case][0]
    if energy == "directed_hinge":
        return np.abs(y - x)
    if energy == "asym_hinge":
        return np.abs(p["beta"] * y - p["alpha"] * x)
    if energy == "margin_hinge":
        return np.minimum(np.abs(np.abs(x - y) - p["m"]), np.abs(x - y))
    return np.full(x.shape, np.inf)


def near_kink_y(case: str, x: np.ndarray, p: dict[str, np.ndarray],
                rng: np.random.Generator) -> np.ndarray | None:
    """A second argument that puts each instance 2e-3 on either side of its kink."""
    energy = STDLIB_CASES[case][0]
    off = 2e-3 * np.where(rng.uniform(size=x.shape) < 0.5, -1.0, 1.0)
    if energy == "directed_hinge":
        return x + off
    if energy == "asym_hinge":
        return (p["alpha"] * x + off) / p["beta"]
    if energy == "margin_hinge":
        return x + np.where(rng.uniform(size=x.shape) < 0.5, -1.0, 1.0) * (p["m"] + off)
    return None


@pytest.fixture(scope="module")
def compiled():  # type: ignore[no-untyped-def]
    return cfc.loads(stdlib_source(), "stdlib_parity.cfc").compile(backend="c")


def check_family(problem, case: str, x: np.ndarray, params: dict[str, np.ndarray]) -> int:  # type: ignore[no-untyped-def]
    """Compare the gradient with finite differences on every instance away from kinks."""
    family = f"f_{case}"
    index = problem.family_names.index(family)
    table = problem.bound.families[index]
    slots = table.slots
    args = [x[s] for s in slots]
    far = kink_distance(case, args[0], args[1] if len(args) > 1 else None, params) > KINK_SKIP
    lo, hi = problem.lower, problem.upper
    inside = np.all([(x[s] - H > lo[s]) & (x[s] + H < hi[s]) for s in slots], axis=0)
    keep = far & inside
    grad = problem.evaluate(x).grad
    checked = 0
    for k in np.flatnonzero(keep):
        for s in slots:
            j = int(s[k])
            xp, xm = x.copy(), x.copy()
            xp[j] += H
            xm[j] -= H
            fd = (problem.evaluate(xp).families[family]
                  - problem.evaluate(xm).families[family]) / (2 * H)
            tol = RTOL * max(abs(fd), abs(grad[j]), 1e-3)
            assert abs(grad[j] - fd) <= tol, (
                f"{case}, instance {k}, {problem.bound.element(j)}: gradient {grad[j]:.12g} "
                f"but finite differences give {fd:.12g}")
            checked += 1
    return checked


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", list(STDLIB_CASES))
def test_stdlib_gradient_matches_finite_differences(compiled, case: str, seed: int) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7919 * seed + sum(map(ord, case)))
    data = stdlib_data(rng)
    weight = float(rng.uniform(0.5, 2.0))
    problem = compiled.bind(data=data, weights={f"f_{case}": weight})
    assert problem.backend.kind is BackendKind.C
    lo, hi = problem.lower, problem.upper
    x = lo + INSIDE + (hi - lo - 2 * INSIDE) * rng.uniform(size=lo.shape)
    params = {p: data[f"d_{case}_{p}"] for p in STDLIB_CASES[case][3]}
    checked = check_family(problem, case, x, params)
    block = np.concatenate(problem.bound.families[problem.family_names.index(f"f_{case}")].slots)
    assert checked >= len(block) // 2, "too many points were skipped as near a kink"
    # the weight multiplies the gradient exactly
    unweighted = compiled.bind(data=data, weights={f"f_{case}": 1.0}).evaluate(x).grad
    np.testing.assert_allclose(problem.evaluate(x).grad[block], weight * unweighted[block],
                               rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize("case", ["directed_hinge", "asym_hinge", "margin_hinge"])
def test_hinge_gradient_next_to_its_kink(compiled, case: str) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(sum(map(ord, case)))
    data = stdlib_data(rng)
    problem = compiled.bind(data=data)
    slots = problem.bound.families[problem.family_names.index(f"f_{case}")].slots
    params = {p: data[f"d_{case}_{p}"] for p in STDLIB_CASES[case][3]}
    x = problem.bound.x0.copy()
    first = rng.uniform(-1.0, 1.0, slots[0].shape)
    x[slots[0]] = first
    x[slots[1]] = np.clip(near_kink_y(case, first, params, rng), -1.5 + INSIDE, 1.5 - INSIDE)
    checked = check_family(problem, case, x, params)
    assert checked >= len(first), "too many points were skipped"


@pytest.mark.parametrize("backend", ["c", "python"])
@pytest.mark.parametrize("p", [1.0, 1.5, 2.0])
def test_damped_gate_benefit_gradient_at_zero(backend: str, p: float) -> None:
    """At g = 0 the gradient is finite: -w·damping·(pos·relu(Δ) − neg·relu(−Δ)) for p = 1
    (it pulls even at g = 0, like gate_benefit) and 0 for p > 1."""
    w, delta, damping, pos, neg = 0.8, 0.3, 0.5, 1.5, 0.7
    source = (f"model damped_at_zero\nvar g in [0, 1] = 0\nfactor d = damped_gate_benefit(g; "
              f"w = {w}, delta = {delta}, damping = {damping}, p = {p}, pos = {pos}, "
              f"neg = {neg})\n")
    problem = cfc.loads(source, "damped_at_zero.cfc").compile(backend=backend).bind()
    evaluation = problem.evaluate()
    expected = -w * damping * pos * delta if p == 1.0 else 0.0
    assert evaluation.energy == 0.0
    assert evaluation.grad[0] == pytest.approx(expected, rel=1e-14, abs=1e-300)
