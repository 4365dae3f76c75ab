"""Generated second derivatives: Hessian-vector products and the Hessian diagonal.

Oracles: central differences of the compiled gradient (an independent kernel), the HVP on
unit vectors for the diagonal, the C kernels against the NumPy reference, and linearity in
the per-family weights. Points are random and at the kinks (relu/abs/max at 0, box bounds).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_cuda import gpu

import cfc_dsl as cfc
from cfc_dsl.runtime.backends.native import BackendKind
from cfc_dsl.runtime.solvers.registry import Needs
from conftest import ALL_ENERGIES_MODEL

# A custom energy with a repeated slot, a product of slots and a parameterised power.
CUSTOM_MODEL = """
model custom
var x[4] in [-1, 1] = 0.2
energy bend(u, v; c = 0.5, p = 3) = c*u^2*v^2 + relu(u - v)^2 + abs(u)^p + tanh(u*v)
factor pair[i in 0..3] = bend(x[i], x[i+1])
factor self[i in 0..4] = bend(x[i], x[i]; c = 2, p = 2)
"""

BACKENDS = ["c", "python"]


@pytest.fixture(scope="module")
def compiled() -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for name, text in (("all", ALL_ENERGIES_MODEL), ("custom", CUSTOM_MODEL)):
        model = cfc.loads(text)
        out[name] = {b: model.compile(backend=b) for b in BACKENDS}
    return out


def _problem(compiled, which: str, backend: str):  # type: ignore[no-untyped-def]
    return compiled[which][backend].bind()


def _points(problem, rng: np.random.Generator) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """Random interior points, points at the bounds, and points on the kinks (x = y, 0)."""
    lo, hi, n = problem.lower, problem.upper, problem.lower.size
    points = [lo + (hi - lo) * rng.random(n) for _ in range(3)]
    points += [lo.copy(), hi.copy(), np.zeros(n), np.full(n, 0.5)]
    # the builtins energy's u^0.5 and v^-2 are singular at 0 already in the gradient
    return [x for x in points if np.all(np.isfinite(problem.backend.energy_and_grad(x)[2]))]


def _fd_hvp(problem, x: np.ndarray, v: np.ndarray, eps: float = 1e-6) -> np.ndarray:  # type: ignore[no-untyped-def]
    _, _, gp = problem.backend.energy_and_grad(x + eps * v)
    _, _, gm = problem.backend.energy_and_grad(x - eps * v)
    return (gp - gm) / (2 * eps)


def _smooth_here(problem, x: np.ndarray, v: np.ndarray, eps: float = 1e-6) -> bool:  # type: ignore[no-untyped-def]
    """Whether the gradient is linear along +-v at this scale (no kink crossed)."""
    g0 = problem.backend.energy_and_grad(x)[2]
    gp = problem.backend.energy_and_grad(x + eps * v)[2]
    gm = problem.backend.energy_and_grad(x - eps * v)[2]
    return bool(np.allclose(gp - g0, g0 - gm, rtol=1e-4, atol=1e-9))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("which", ["all", "custom"])
def test_hvp_matches_finite_differences_of_the_gradient(compiled, which: str, backend: str) -> None:
    problem = _problem(compiled, which, backend)
    rng = np.random.default_rng(8)
    checked = 0
    for x in _points(problem, rng):
        for _ in range(3):
            v = rng.standard_normal(x.size)
            hv = problem.backend.hvp(x, v)
            assert np.all(np.isfinite(hv)), (x, hv)
            if not _smooth_here(problem, x, v):
                continue  # across a kink the difference quotient is not the one-sided rule
            np.testing.assert_allclose(hv, _fd_hvp(problem, x, v), rtol=1e-5, atol=1e-6)
            checked += 1
    assert checked >= 6


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("which", ["all", "custom"])
def test_diagonal_is_hvp_on_unit_vectors(compiled, which: str, backend: str) -> None:
    problem = _problem(compiled, which, backend)
    for x in _points(problem, np.random.default_rng(12)):
        diag = problem.backend.hess_diag(x)
        columns = np.array([problem.backend.hvp(x, e) for e in np.eye(x.size)])
        np.testing.assert_allclose(diag, np.diag(columns), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(columns, columns.T, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("which", ["all", "custom"])
def test_c_kernels_match_the_python_reference(compiled, which: str) -> None:
    c, py = _problem(compiled, which, "c"), _problem(compiled, which, "python")
    assert c.backend.kind is BackendKind.C
    rng = np.random.default_rng(1)
    for x in _points(c, rng):
        v = rng.standard_normal(x.size)
        np.testing.assert_allclose(c.backend.hvp(x, v), py.backend.hvp(x, v), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(c.backend.hess_diag(x), py.backend.hess_diag(x),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_weights_scale_each_family_linearly(compiled, backend: str) -> None:
    problem = _problem(compiled, "all", backend)
    rng = np.random.default_rng(3)
    x, v = _points(problem, rng)[0], rng.standard_normal(problem.lower.size)
    families = len(problem.family_names)
    unit = np.eye(families)
    per_family_hv = [problem.backend.hvp(x, v, unit[f]) for f in range(families)]
    per_family_d = [problem.backend.hess_diag(x, unit[f]) for f in range(families)]
    w = rng.uniform(-2, 3, families)
    np.testing.assert_allclose(problem.backend.hvp(x, v, w),
                               sum(wf * h for wf, h in zip(w, per_family_hv, strict=True)),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(problem.backend.hess_diag(x, w),
                               sum(wf * d for wf, d in zip(w, per_family_d, strict=True)),
                               rtol=1e-12, atol=1e-12)


def test_kink_rules_are_one_sided() -> None:
    """relu(u)^2 has curvature 2 only where u > 0; relu(u) and margin_hinge have none."""
    model = cfc.loads("model k\nvar x in [-1, 1] = 0\nvar y in [-1, 1] = 0\n"
                      "factor h = directed_hinge(x, y; w = 1)\n"
                      "factor m = margin_hinge(x, y; w = 1, m = 0)\n")
    problem = model.compile(backend="python").bind()
    assert np.array_equal(problem.backend.hess_diag(np.array([0.0, 0.0])), [0.0, 0.0])
    assert np.array_equal(problem.backend.hess_diag(np.array([0.0, 0.5])), [2.0, 2.0])
    assert np.array_equal(problem.backend.hvp(np.array([0.0, 0.5]), np.array([1.0, 0.0])),
                          [2.0, -2.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_power_of_a_gate_at_zero_is_finite(backend: str) -> None:
    """g^p at g = 0: p = 1 and p = 0 have no curvature (not 0 * inf = NaN), p = 2 has 2."""
    model = cfc.loads("model g\nvar g[3] in [0, 1] = 0\n" + "".join(
        f"factor d{p} = damped_gate_benefit(g[{p}]; delta = 1, p = {p})\n" for p in range(3)))
    problem = model.compile(backend=backend).bind()
    np.testing.assert_array_equal(problem.backend.hess_diag(np.zeros(3)), [0.0, 0.0, -2.0])


def test_objective_gives_hvp_only_when_declared(compiled) -> None:
    problem = _problem(compiled, "all", "python")
    x = _points(problem, np.random.default_rng(0))[0]
    v = np.ones_like(x)
    assert np.array_equal(problem.objective(Needs.HVP).hvp(x, v), problem.backend.hvp(x, v))
    assert np.array_equal(problem.objective(Needs.HVP).hess_diag(x), problem.backend.hess_diag(x))
    with pytest.raises(RuntimeError, match="Needs.HVP"):
        problem.objective().hvp(x, v)


@gpu
@pytest.mark.parametrize("which", ["all", "custom"])
def test_cuda_kernels_match_c(compiled, which: str) -> None:
    text = ALL_ENERGIES_MODEL if which == "all" else CUSTOM_MODEL
    cu, c = cfc.loads(text).compile(backend="cuda").bind(), _problem(compiled, which, "c")
    assert cu.backend.kind is BackendKind.CUDA
    rng = np.random.default_rng(5)
    for x in _points(c, rng):
        v = rng.standard_normal(x.size)  # atomicAdd order: equal to rounding, not bit for bit
        np.testing.assert_allclose(cu.backend.hvp(x, v), c.backend.hvp(x, v), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(cu.backend.hess_diag(x), c.backend.hess_diag(x),
                                   rtol=1e-12, atol=1e-12)
