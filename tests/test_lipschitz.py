"""Curvature bounds (cfc_dsl/lipschitz.py) against an independent oracle: the exact Hessian
sampled densely, at kinks and on both sides of them. Run with -s to see the tightness table."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from cfc_dsl.checker import load_text, stdlib_energies
from cfc_dsl.derive import DerivedEnergy, derive_energy, derive_model
from cfc_dsl.functions import NUMPY_FUNCTIONS
from cfc_dsl.lipschitz import bound_formula, evaluate_bound, hessian_bound
from cfc_dsl.lipschitz_numeric import univariate_max_abs

SMOOTH = ["landau", "order", "gate_local", "compression", "quadratic", "directed_hinge",
          "asym_hinge"]


def stdlib() -> dict[str, DerivedEnergy]:
    specs = {e.name: e for e in stdlib_energies()}
    return {name: derive_energy(e, specs) for name, e in specs.items()}


ENERGIES = stdlib()


def user_energy(body: str, name: str = "e", slots: str = "x") -> DerivedEnergy:
    nslots = len(slots.split(","))
    args = ", ".join(f"v[{i}]" for i in range(nslots))
    text = f"var v[3]\nenergy {name}({slots}; ) = {body}\nfactor f = {name}({args})"
    return next(d for d in derive_model(load_text(text, "t.cfc")) if d.name == name)


def sample_params(name: str, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    u = lambda a, b: rng.uniform(a, b, n)  # noqa: E731
    table = {
        "landau": dict(a=u(-1, 1), b=u(1e-3, 1), h=u(-1, 1)),
        "order": dict(a=u(-1, 1), b=u(1e-3, 1)),
        "gate_local": dict(a=u(-1, 1), b=u(1e-3, 1)),
        "compression": dict(a=u(-1, 1), b=u(1e-3, 1), t=u(-0.5, 1.5)),
        "quadratic": dict(w=u(-2, 2)),
        "directed_hinge": dict(w=u(-2, 2)),
        "asym_hinge": dict(w=u(-2, 2), alpha=u(0, 2), beta=u(0, 2)),
        "margin_hinge": dict(w=u(-2, 2), m=u(0, 1.5)),
        "gate_benefit": dict(w=u(-2, 2), delta=u(-1, 1)),
        "damped_gate_benefit": dict(w=u(-2, 2), delta=u(-1, 1), damping=u(0, 2),
                                    p=rng.choice([0.0, 1.0, 2.0, 2.5, 3.0, 4.0], n),
                                    pos=u(0, 2), neg=u(0, 2)),
    }
    return table[name]


def true_hessian(d: DerivedEnergy):  # type: ignore[no-untyped-def]
    """The exact a.e. Hessian as a vectorised function of (points..., params...)."""
    hess = [[sp.diff(g, s) for s in d.slots] for g in d.grad]
    fn = sp.lambdify(d.slots + d.params, hess, [NUMPY_FUNCTIONS, "numpy"])

    def call(points: list[np.ndarray], params: dict[str, np.ndarray]) -> np.ndarray:
        shape = np.broadcast(*points, *params.values()).shape
        with np.errstate(all="ignore"):
            rows = fn(*points, *(params[p.name] for p in d.params))
        return np.abs(np.array([[np.broadcast_to(np.asarray(v, float), shape) for v in r]
                                for r in rows], dtype=float))
    return call


def kink_points(name: str, pts: list[np.ndarray], params: dict[str, np.ndarray]) -> list:
    """Points on a hinge's kink (y on the line where relu's argument is 0), or []."""
    if name == "directed_hinge":
        return [pts[0], pts[0]]
    if name == "asym_hinge":
        beta = np.where(params["beta"] == 0, 1.0, params["beta"])
        return [pts[0], params["alpha"][:, None] * pts[0] / beta[:, None]]
    return []


@pytest.mark.parametrize("name", sorted(ENERGIES))
def test_sound_at_random_and_kink_points(name: str) -> None:
    """bound >= |H| at 10^4 random points, at corners, on kinks and 1e-12 either side."""
    d, rng = ENERGIES[name], np.random.default_rng(7)
    bound, hess = hessian_bound(d), true_hessian(d)
    n, per, k = 200, 50, len(d.slots)
    params = {p: np.where(rng.random(n) < 0.1, 0.0, v)       # exact zeros are edge cases
              for p, v in sample_params(name, rng, n).items()}
    lo0 = 0.0 if name == "damped_gate_benefit" else -1.5
    lo = {s: rng.uniform(lo0, 1.0, n) for s in bound.slots}
    hi = {s: lo[s] + rng.uniform(0.0, 1.5, n) for s in bound.slots}
    b = evaluate_bound(bound, params, lo, hi)
    if bound.lipschitz:
        assert np.all(np.isfinite(b))
    pts = [lo[s][:, None] + (hi[s] - lo[s])[:, None] * rng.uniform(0, 1, (n, per))
           for s in bound.slots]
    pts = [np.concatenate([p, lo[s][:, None], hi[s][:, None]], axis=1)
           for p, s in zip(pts, bound.slots, strict=True)]
    pcol = {p: v[:, None] for p, v in params.items()}
    sets = [pts]
    kink = kink_points(name, pts, params)
    if kink:
        sets += [kink] + [[kink[0], kink[1] + eps] for eps in (-1e-12, 1e-12)]
    for xs in sets:
        inside = np.all([(x >= lo[s][:, None]) & (x <= hi[s][:, None])
                         for x, s in zip(xs, bound.slots, strict=True)], axis=0)
        h = hess(xs, pcol)                                     # (k, k, n, per)
        for i in range(k):
            for j in range(k):
                ok = ~inside | np.isnan(h[i, j]) | (h[i, j] <= b[:, i, j, None]
                                                       + 1e-9 * (1 + np.abs(h[i, j])))
                assert ok.all(), (name, i, j, h[i, j][~ok][:3], b[:, i, j].max())


@pytest.mark.parametrize("name", SMOOTH)
def test_tight_on_unit_box(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """bound / (max of |H| on a dense grid of [0, 1]^k, corners included) <= 2."""
    d, rng = ENERGIES[name], np.random.default_rng(11)
    bound, hess, n, k = hessian_bound(d), true_hessian(d), 40, len(d.slots)
    assert bound.lipschitz and bound.reason == ""
    params = sample_params(name, rng, n)
    b = evaluate_bound(bound, params, {s: 0.0 for s in bound.slots},
                       {s: 1.0 for s in bound.slots})
    grid = np.linspace(0.0, 1.0, 2001 if k == 1 else 121)
    pts = [g.ravel()[None, :] for g in np.meshgrid(*[grid] * k, indexing="ij")]
    h = hess(pts, {p: v[:, None] for p, v in params.items()}).max(axis=-1)  # (k, k, n)
    worst = []
    for i in range(k):
        for j in range(k):
            live = h[i, j] > 1e-12
            ratio = b[live, i, j] / h[i, j, live]
            assert np.all(b[:, i, j] >= h[i, j] * (1 - 1e-12))
            assert np.all(ratio <= 2.0), (name, i, j, ratio.max())
            assert np.all(b[~live, i, j] <= 1e-9)
            worst.append(f"{bound.slots[i]}{bound.slots[j]}:{bound.method[i][j][:4]} "
                         f"max {ratio.max():.4f} median {np.median(ratio):.4f}")
    with capsys.disabled():
        print(f"\n  tightness {name:15s} " + " | ".join(worst), end="")


def test_margin_hinge_is_not_lipschitz() -> None:
    bound = hessian_bound(ENERGIES["margin_hinge"])
    assert not bound.lipschitz
    assert bound.reason == ("relu(abs(x - y) - m) has a kink where abs(x - y) = m: "
                            "the gradient jumps")
    box = dict(lower={"x": 0.0, "y": 0.0}, upper={"x": 1.0, "y": 1.0})
    b = evaluate_bound(bound, {"w": np.array([1.0, 1.0, 0.0]), "m": np.array([0.0, 2.0, 0.5])},
                       **box)
    assert np.all(np.isinf(b[0]))         # the kink |x - y| = 0 is in the box
    assert np.all(b[1:] <= 1e-299)        # kink outside the box, or w = 0: no jump


def test_gate_benefit_has_zero_hessian() -> None:
    bound = hessian_bound(ENERGIES["gate_benefit"])
    assert bound.lipschitz and bound.entries == ((sp.S.Zero,),)
    b = evaluate_bound(bound, {}, {"g": [0.0, -3.0]}, {"g": [1.0, 5.0]})
    assert b.shape == (2, 1, 1) and np.all(b == 0)


def test_damped_gate_benefit_parameter_exponent() -> None:
    bound = hessian_bound(ENERGIES["damped_gate_benefit"])
    assert not bound.lipschitz and "g^p with parameter exponent p" in bound.reason
    p = np.array([1.0, 2.0, 1.5, 0.5, 1.5, 0.0])
    lo = np.array([0.0, 0.0, 0.0, 0.0, 0.25, 0.0])
    b = evaluate_bound(bound, {"p": p, "w": 1.0, "delta": 0.5, "damping": 1.0, "pos": 1.0,
                               "neg": 1.0}, {"g": lo}, {"g": 1.0})[:, 0, 0]
    assert b[0] <= 1e-299 and b[5] <= 1e-299                # linear, constant: no curvature
    assert b[1] == pytest.approx(1.0, rel=1e-9)             # -0.5 g^2: |H| = 1
    assert np.isinf(b[2]) and np.isinf(b[3])                # g^1.5, g^0.5 on [0, 1]
    assert b[4] == pytest.approx(1.5 * 0.5 * 0.5 * 0.25**-0.5, rel=1e-9)


def test_sqrt_is_not_lipschitz() -> None:
    m = load_text("var x[2]\nenergy e(x; p = 1) = sqrt(x)\nfactor f[i in 0..2] = e(x[i])",
                  "t.cfc")
    d = next(e for e in derive_model(m) if e.name == "e")
    bound = hessian_bound(d)
    assert not bound.lipschitz and bound.reason == "sqrt(x) has unbounded curvature near x = 0"
    b = evaluate_bound(bound, {}, {"x": [0.0, 0.25, -1.0]}, {"x": [1.0, 1.0, 1.0]})[:, 0, 0]
    assert np.isinf(b[0]) and np.isinf(b[2]) and b[1] == pytest.approx(2.0, rel=1e-9)


@pytest.mark.parametrize("body, slots, lipschitz, reason", [
    ("max(x, y)^2", "x, y", False, "has a kink where y = x: the gradient jumps"),
    ("min(x, 0)^2", "x", True, ""),
    ("relu(x - 0.5)^3", "x", True, ""),
    ("abs(x)^3 + exp(x) * sigmoid(x)", "x", True, ""),
    ("log(1 + x^2) + softplus(x) * tanh(y)", "x, y", True, ""),
    ("sin(x * y) + cos(x)^2 + hazard(x - y, 3)^2", "x, y", True, ""),
    ("relu(x)^2 * relu(y)", "x, y", False, "relu(y) has a kink where y = 0: the gradient jumps"),
    ("1 / x", "x", False, "1/x has unbounded curvature near x = 0"),
    ("log(x)", "x", False, "log(x) has unbounded curvature near x = 0"),
    ("abs(x - y)", "x, y", False, "abs(x - y) has a kink where x = y: the gradient jumps"),
])
def test_user_energies(body: str, slots: str, lipschitz: bool, reason: str) -> None:
    d = user_energy(body, slots=slots)
    bound = hessian_bound(d)
    assert bound.lipschitz == lipschitz and bound.reason.endswith(reason)
    rng, k = np.random.default_rng(3), len(d.slots)
    lo = {s: rng.uniform(-1.5, 1.0, 300) for s in bound.slots}
    hi = {s: lo[s] + rng.uniform(0, 1, 300) for s in bound.slots}
    b = evaluate_bound(bound, {}, lo, hi)
    pts = [lo[s][:, None] + (hi[s] - lo[s])[:, None] * rng.uniform(0, 1, (300, 40))
           for s in bound.slots]
    h = true_hessian(d)(pts, {})                 # NaN: undefined there; then the bound is inf
    for i in range(k):
        for j in range(k):
            assert np.all(np.where(np.isnan(h[i, j]), np.isinf(b[:, i, j, None]),
                                   h[i, j] <= b[:, i, j, None] * (1 + 1e-9) + 1e-12))


def test_polynomial_entries_are_exact() -> None:
    d = user_energy("x^4 - x^3")                  # H = 12 x^2 - 6 x; intervals would say 12
    bound = hessian_bound(d)
    assert bound.method == (("polynomial",),)
    b = evaluate_bound(bound, {}, {"x": [0.0, 0.0, 0.1]}, {"x": [1.0, 0.5, 0.4]})[:, 0, 0]
    assert b == pytest.approx([6.0, 0.75, 0.75], rel=1e-9)
    d2 = user_energy("x^2 * y^2", slots="x, y")  # H_xy = 4 x y: multi-affine, vertices
    bound2 = hessian_bound(d2)
    assert bound2.method[0][1] == "polynomial"
    b2 = evaluate_bound(bound2, {}, {"x": -1.0, "y": 0.5}, {"x": 2.0, "y": 1.0})[0]
    assert b2 == pytest.approx(np.array([[2.0, 8.0], [8.0, 8.0]]), rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(coeffs=st.lists(st.floats(-10, 10), min_size=1, max_size=6),
       a=st.floats(-3, 3), width=st.floats(0, 3))
def test_polynomial_max_is_exact_and_sound(coeffs: list[float], a: float, width: float) -> None:
    c = np.array([coeffs])
    got = univariate_max_abs(c[:, ::-1], np.array([a]), np.array([a + width]))[0]
    xs = np.linspace(a, a + width, 20001)
    sampled = np.abs(np.polyval(c[0], xs)).max()
    scale = np.sum(np.abs(c) * max(abs(a), abs(a + width), 1.0) ** np.arange(c.size))
    assert sampled <= got + 1e-10 * scale and got <= sampled + 1e-6 * scale


def test_formulas_are_deterministic() -> None:
    """Same text under another hash seed (sympy orders Min/Max arguments by hash otherwise)."""
    code = ("from cfc_dsl.checker import stdlib_energies as s; from cfc_dsl.derive import "
            "derive_energy as d; from cfc_dsl.lipschitz import hessian_bound as h, "
            "bound_formula as f; E = {e.name: e for e in s()}; "
            "print([f(h(d(E[n], E))) for n in ('asym_hinge', 'margin_hinge', 'landau')])")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONHASHSEED": "12345"}).stdout
    here = [bound_formula(hessian_bound(ENERGIES[n]))
            for n in ("asym_hinge", "margin_hinge", "landau")]
    assert other.strip() == str(here)
    lines = bound_formula(hessian_bound(ENERGIES["quadratic"]))
    assert len(lines) == 4 and lines[1].startswith("|d2E/dx dy| <= ")


def test_a_huge_hessian_gets_no_finite_bound_quickly() -> None:
    import time

    from cfc_dsl.lipschitz import MAX_HESSIAN_OPS

    body = "x*y"
    for _ in range(5):
        body = f"tanh({body})"
    model = load_text(f"var x[2]\nenergy e(x, y) = {body}\nfactor f = e(x[0], x[1])", "t.cfc")
    start = time.perf_counter()
    hb = hessian_bound(derive_model(model)[0])
    assert time.perf_counter() - start < 5.0  # was minutes before the size limit
    assert not hb.lipschitz and "too large to bound" in hb.reason
    assert str(MAX_HESSIAN_OPS) in hb.reason
    assert all(e == sp.oo for row in hb.entries for e in row)
