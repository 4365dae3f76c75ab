"""The C kernels and the NumPy reference backend agree to 1e-12 (relative, norm-wise).

Checked for every example model and for every standard-library energy, at random points
inside the variable bounds, on the total energy, the per-family energies and the gradient.
"""

from __future__ import annotations

import numpy as np
import pytest

import cfc_dsl as cfc
from cfc_dsl.runtime.backends.native import BackendKind, PythonBackend
from conftest import EXAMPLES

RTOL = 1e-12

# case -> (energy, number of slots, variable bounds, parameter samplers)
# a sampler is a constant, a (low, high) uniform range, or "signed" (both signs, |v| in 0.05..1)
STDLIB_CASES: dict[str, tuple[str, int, tuple[float, float], dict[str, object]]] = {
    "landau": ("landau", 1, (-1.5, 1.5), {"a": (-1.0, 1.0), "b": (0.1, 1.0), "h": (-1.0, 1.0)}),
    "order": ("order", 1, (-1.5, 1.5), {"a": (0.1, 2.0), "b": (0.0, 1.0)}),
    "gate_local": ("gate_local", 1, (0.0, 1.0), {"a": (0.05, 1.0), "b": (0.05, 1.0)}),
    "compression": ("compression", 1, (-1.5, 1.5),
                    {"a": (0.1, 2.0), "b": (0.0, 1.0), "t": (-1.0, 1.0)}),
    "quadratic": ("quadratic", 2, (-1.5, 1.5), {"w": (0.1, 2.0)}),
    "directed_hinge": ("directed_hinge", 2, (-1.5, 1.5), {"w": (0.1, 2.0)}),
    "asym_hinge": ("asym_hinge", 2, (-1.5, 1.5),
                   {"w": (0.1, 2.0), "alpha": (0.2, 2.0), "beta": (0.2, 2.0)}),
    "margin_hinge": ("margin_hinge", 2, (-1.5, 1.5), {"w": (0.1, 2.0), "m": (0.05, 0.5)}),
    "gate_benefit": ("gate_benefit", 1, (0.0, 1.0), {"w": (0.1, 2.0), "delta": "signed"}),
    **{f"damped_p{str(p).replace('.', '_')}": (
        "damped_gate_benefit", 1, (0.0, 1.0),
        {"w": (0.1, 2.0), "delta": "signed", "damping": (0.1, 1.0), "p": p,
         "pos": (0.0, 2.0), "neg": (0.0, 2.0)}) for p in (1.0, 1.5, 2.0)},
}
K = 16  # instances per family


def stdlib_source(name: str = "stdlib_parity") -> str:
    """One model with a family per case; each family has its own variables and data."""
    lines = [f"model {name}", f"size K = {K}"]
    for case, (energy, nslots, (lo, hi), params) in STDLIB_CASES.items():
        mid = 0.5 * (lo + hi)
        for s in range(nslots):
            lines.append(f"var v_{case}_{s}[K] in [{lo}, {hi}] = {mid}")
        for p in params:
            lines.append(f"data d_{case}_{p}[K]")
        slots = ", ".join(f"v_{case}_{s}[i]" for s in range(nslots))
        args = ", ".join(f"{p} = d_{case}_{p}[i]" for p in params)
        lines.append(f"factor f_{case}[i in 0..K] = {energy}({slots}; {args})")
    return "\n".join(lines) + "\n"


def stdlib_data(rng: np.random.Generator) -> dict[str, np.ndarray]:
    data = {}
    for case, (_, _, _, params) in STDLIB_CASES.items():
        for p, sampler in params.items():
            if sampler == "signed":
                values = rng.uniform(0.05, 1.0, K) * np.where(np.arange(K) % 2 == 0, -1.0, 1.0)
            elif isinstance(sampler, tuple):
                values = rng.uniform(*sampler, K)
            else:
                values = np.full(K, float(sampler))
            data[f"d_{case}_{p}"] = values
    return data


def random_point(problem, rng: np.random.Generator) -> np.ndarray:  # type: ignore[no-untyped-def]
    lo, hi = problem.lower, problem.upper
    return lo + (hi - lo) * rng.uniform(0.0, 1.0, lo.shape)


def energy_scale(problem, x: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    """Sum of |weighted instance energies|: the size of what the total is summed from."""
    ref = PythonBackend(problem.bound)
    return sum(abs(t.weight) * float(np.abs(ref.per_instance(i, x)).sum())
               for i, t in enumerate(problem.bound.families))


def assert_close(actual: np.ndarray | float, expected: np.ndarray | float, floor: float,
                 what: str) -> None:
    a = np.atleast_1d(np.asarray(actual, float))
    e = np.atleast_1d(np.asarray(expected, float))
    assert a.shape == e.shape, what
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(e)), what
    diff = float(np.max(np.abs(a - e))) if a.size else 0.0
    bound = RTOL * max(float(np.max(np.abs(e))) if e.size else 0.0, floor)
    assert diff <= bound, f"{what}: C and Python differ by {diff:.3e} (allowed {bound:.3e})"


def compare(c_problem, py_problem, x: np.ndarray, what: str) -> None:  # type: ignore[no-untyped-def]
    ec, fam_c, gc = c_problem.backend.energy_and_grad(x)
    ep, fam_p, gp = py_problem.backend.energy_and_grad(x)
    scale = energy_scale(py_problem, x)
    assert_close(ec, ep, scale, f"{what}: energy")
    assert_close(fam_c, fam_p, scale, f"{what}: family energies")
    assert_close(gc, gp, 1.0, f"{what}: gradient")
    e_only, fam_only = c_problem.backend.energy(x)  # the energy-only kernels agree too
    assert_close(e_only, ep, scale, f"{what}: energy-only kernel")
    assert_close(fam_only, fam_p, scale, f"{what}: energy-only family energies")


EXAMPLE_FILES = sorted(EXAMPLES.glob("*.cfc"))
EXAMPLE_DATA = {"grid_percolation": {"shortcuts": EXAMPLES / "grid_shortcuts.npy"}}


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_examples_backends_agree(path) -> None:  # type: ignore[no-untyped-def]
    model = cfc.load(str(path))
    data = EXAMPLE_DATA.get(path.stem, {})
    c_problem = model.compile(backend="c").bind(data=data)
    py_problem = model.compile(backend="python").bind(data=data)
    assert c_problem.backend.kind is BackendKind.C
    assert py_problem.backend.kind is BackendKind.PYTHON
    rng = np.random.default_rng(sum(map(ord, path.stem)))
    compare(c_problem, py_problem, c_problem.bound.x0, f"{path.stem} at x0")
    for k in range(4):
        compare(c_problem, py_problem, random_point(c_problem, rng), f"{path.stem} point {k}")


@pytest.fixture(scope="module")
def stdlib_model():  # type: ignore[no-untyped-def]
    model = cfc.loads(stdlib_source(), "stdlib_parity.cfc")
    return model, model.compile(backend="c"), model.compile(backend="python")


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("case", list(STDLIB_CASES))
def test_stdlib_energy_backends_agree(stdlib_model, case: str, seed: int) -> None:  # type: ignore[no-untyped-def]
    _, c_compiled, py_compiled = stdlib_model
    rng = np.random.default_rng(1000 * seed + sum(map(ord, case)))
    data = stdlib_data(rng)
    weights = {f"f_{c}": float(rng.uniform(0.5, 2.0)) for c in STDLIB_CASES}
    c_problem = c_compiled.bind(data=data, weights=weights)
    py_problem = py_compiled.bind(data=data, weights=weights)
    x = random_point(c_problem, rng)
    ec, fam_c, gc = c_problem.backend.energy_and_grad(x)
    ep, fam_p, gp = py_problem.backend.energy_and_grad(x)
    index = c_problem.family_names.index(f"f_{case}")
    table = py_problem.bound.families[index]
    scale = abs(table.weight) * float(np.abs(PythonBackend(py_problem.bound)
                                             .per_instance(index, x)).sum())
    assert abs(fam_p[index]) > 0.0 or case == "gate_benefit", "a trivial test point"
    assert_close(fam_c[index], fam_p[index], scale, f"{case}: family energy")
    block = np.concatenate(table.slots)  # this family's variables and no other family's
    assert_close(gc[block], gp[block], 1.0, f"{case}: gradient")
    assert np.any(gp[block] != 0.0) or case == "margin_hinge", "a trivial test point"
    compare(c_problem, py_problem, x, f"stdlib model ({case} seed)")


@pytest.mark.parametrize("backend", ["c", "python"])
def test_a_vector_of_the_wrong_length_is_refused(backend: str) -> None:
    """The C kernels index X and G with the bound tables: a short vector must never reach them."""
    problem = cfc.load(str(EXAMPLES / "chain.cfc")).compile(backend=backend).bind(
        sizes={"N": 1000})
    for call in (problem.backend.energy, problem.backend.energy_and_grad):
        with pytest.raises((ValueError, IndexError)):
            call(np.zeros(10))


# Literals and parameters at the edges of a double: integers past 2^53 and 2^64 (C had
# truncated 2^64 to 0), products of exact SymPy integers, tiny and huge scales, and slots
# named like cfc's own SymPy heads (Sigmoid, Relu, Step shadowed the NumPy helpers).
EXTREME_BODIES = {
    "two_to_64": "2^64 * x",
    "past_2_53": "9007199254740993 * x + 3^40 * x^2",
    "huge_exponent": "x^(2^60) + x",
    "tiny_and_huge": "1e-300 * x^2 + 1e300 * x * 1e-300 + 1e15 * sigmoid(x)",
    "named_like_heads": "sigmoid(Sigmoid) * relu(Sigmoid - 0.3) + Sigmoid^2",
}
# +-1e200, not 1e300: mixed-sign overflow makes the Python backend's math.fsum raise (noted)
EXTREME_PARAMS = (-1e200, -1.0, 0.0, 5e-324, 1e-300, 1.0, 2.0 ** 64, 1e200)


def _extreme_source(case: str) -> str:
    body = EXTREME_BODIES[case]
    slot = "Sigmoid" if "Sigmoid" in body else "x"
    return (f"size K = {len(EXTREME_PARAMS)}\nvar v[K] in [0.1, 0.9] = 0.5\ndata d[K]\n"
            f"energy e({slot}; Step = 1) = Step * ({body})\n"
            "factor f[i in 0..K] = e(v[i]; Step = d[i])\n")


@pytest.mark.parametrize("case", list(EXTREME_BODIES))
def test_extreme_literals_and_parameters_agree(case: str) -> None:
    model = cfc.loads(_extreme_source(case), f"extreme_{case}.cfc")
    data = {"d": np.array(EXTREME_PARAMS)}
    c_problem = model.compile(backend="c").bind(data=data)
    py_problem = model.compile(backend="python").bind(data=data)
    rng = np.random.default_rng(sum(map(ord, case)))
    for k in range(3):
        x = random_point(c_problem, rng)
        with np.errstate(all="ignore"):
            ec, _, gc = c_problem.backend.energy_and_grad(x)
            ep, _, gp = py_problem.backend.energy_and_grad(x)
        # per element: same value, or both the same non-finite value (1e300 * 2^64 overflows)
        for what, a, e in (("energy", ec, ep), ("gradient", gc, gp)):
            a, e = np.atleast_1d(a), np.atleast_1d(e)
            same_inf = ~np.isfinite(a) & ~np.isfinite(e) & ((a == e) | (np.isnan(a) & np.isnan(e)))
            close = np.abs(a - e) <= RTOL * np.maximum(np.abs(e), 1.0)
            assert np.all(same_inf | close), f"{case} point {k} {what}: C {a} vs Python {e}"
