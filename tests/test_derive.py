"""The derive stage: one SymPy expression and exact gradient per energy.

Checks that the gradient is SymPy's derivative of the energy (and matches hand-derived
closed forms and finite differences), that the non-smooth built-ins have the one-sided
derivatives of their rows in cfc_dsl/builtins.py, and that no Heaviside, DiracDelta or
other unprintable SymPy construct reaches a derived expression or the generated C.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import sympy as sp

from cfc_dsl.checker import stdlib_energies
from cfc_dsl.codegen.render import render_model
from cfc_dsl.derive import DerivedEnergy, derive_energy, derive_model, symbol
from cfc_dsl.frontend import load_source
from cfc_dsl.functions import NUMPY_FUNCTIONS, AbsVal, Relu, Sign, Step
from conftest import ALL_ENERGIES_MODEL

STDLIB = {e.name: e for e in stdlib_energies()}

# SymPy constructs that must never appear: no trusted C spelling, or an unevaluated derivative.
FORBIDDEN = (sp.Heaviside, sp.DiracDelta, sp.Piecewise, sp.Max, sp.Min, sp.Abs, sp.sign,
             sp.Derivative, sp.Subs)


def user_energy(text: str, name: str) -> DerivedEnergy:
    """Derive one user energy declared in `text` (a model is built around it)."""
    model = load_source(text, "user.cfc")
    energies = {e.name: e for e in model.energies}
    return derive_energy(energies[name], energies)


def all_derived() -> dict[str, DerivedEnergy]:
    model = load_source(ALL_ENERGIES_MODEL, "all_energies.cfc")
    return {d.name: d for d in derive_model(model)}


def at(d: DerivedEnergy, **values: float) -> dict[sp.Symbol, sp.Expr]:
    return {symbol(k): sp.sympify(v) for k, v in values.items()}


def assert_printable(expr: sp.Expr, where: str) -> None:
    for cls in FORBIDDEN:
        assert not expr.has(cls), f"{cls.__name__} in {where}: {expr}"


# ---------------------------------------------------------------- gradient = diff
@pytest.mark.parametrize("name", sorted(STDLIB))
def test_stdlib_gradient_is_sympy_diff(name: str) -> None:
    d = derive_energy(STDLIB[name], STDLIB)
    assert [s.name for s in d.slots] == list(STDLIB[name].slots)
    assert [p.name for p in d.params] == list(STDLIB[name].param_names)
    assert len(d.grad) == len(d.slots)
    for s, g in zip(d.slots, d.grad, strict=True):
        assert sp.simplify(g - sp.diff(d.expr, s)) == 0, f"d{name}/d{s}"
        assert s.is_real


def test_user_energy_gradient_is_sympy_diff() -> None:
    d = all_derived()["builtins"]
    for s, g in zip(d.slots, d.grad, strict=True):
        assert sp.simplify(g - sp.diff(d.expr, s)) == 0


def test_gradients_match_hand_derived_forms() -> None:
    x, y, a, b, h, w, t, delta = (symbol(n) for n in ("x", "y", "a", "b", "h", "w", "t", "delta"))
    expected = {
        "landau": (a * x**2 + b * x**4 - h * x, [2 * a * x + 4 * b * x**3 - h]),
        "order": (a * (1 - x)**2 + b * (1 - x)**4, [-2 * a * (1 - x) - 4 * b * (1 - x)**3]),
        "gate_local": (a * x**2 + b * x**4, [2 * a * x + 4 * b * x**3]),
        "compression": (a * (x - t)**2 + b * (x - t)**4,
                        [2 * a * (x - t) + 4 * b * (x - t)**3]),
        "quadratic": (w * (x - y)**2, [2 * w * (x - y), -2 * w * (x - y)]),
        "gate_benefit": (-w * symbol("g") * delta, [-w * delta]),
        "directed_hinge": (w * Relu(y - x)**2,
                           [-2 * w * Relu(y - x) * Step(y - x), 2 * w * Relu(y - x) * Step(y - x)]),
    }
    for name, (energy, grads) in expected.items():
        d = derive_energy(STDLIB[name], STDLIB)
        assert sp.expand(d.expr - energy) == 0, name
        for got, want in zip(d.grad, grads, strict=True):
            assert sp.expand(got - want) == 0, f"{name}: {got} != {want}"


def _finite_difference_cases() -> list[str]:
    return sorted(STDLIB) + ["builtins"]


@pytest.mark.parametrize("name", _finite_difference_cases())
def test_gradient_matches_finite_differences(name: str) -> None:
    """Away from kinks the exact gradient agrees with central differences."""
    d = all_derived()["builtins"] if name == "builtins" else derive_energy(STDLIB[name], STDLIB)
    args = list(d.slots) + list(d.params)
    modules = [NUMPY_FUNCTIONS, "numpy"]
    f = sp.lambdify(args, d.expr, modules=modules)
    grads = [sp.lambdify(args, g, modules=modules) for g in d.grad]
    rng = np.random.default_rng(20240611)
    h = 1e-6
    for _ in range(6):
        xs = list(rng.uniform(0.1, 0.9, len(d.slots)))
        ps = list(rng.uniform(0.2, 1.5, len(d.params)))
        for i, g in enumerate(grads):
            up, down = list(xs), list(xs)
            up[i] += h
            down[i] -= h
            numeric = (f(*up, *ps) - f(*down, *ps)) / (2 * h)
            exact = float(g(*xs, *ps))
            assert math.isclose(exact, numeric, rel_tol=1e-6, abs_tol=1e-6), \
                f"{name} d/d{d.slots[i]} at {xs}, {ps}: exact {exact}, numeric {numeric}"


# ---------------------------------------------------------------- one-sided derivatives
def test_relu_derivative_is_step_with_step_zero_at_zero() -> None:
    u = symbol("u")
    assert sp.diff(Relu(u), u) == Step(u)
    assert Step(sp.Integer(0)) is sp.S.Zero
    assert Step(sp.Float(0.0)) is sp.S.Zero
    assert Step(sp.Integer(1)) is sp.S.One
    assert Step(sp.Integer(-1)) is sp.S.Zero
    assert sp.diff(Step(u), u) == 0  # a.e.; never a DiracDelta


def test_abs_derivative_is_sign_with_zero_at_zero() -> None:
    d = user_energy("var z = 0\nenergy a(u) = abs(u)\nfactor f = a(z)", "a")
    (u,) = d.slots
    assert d.grad[0] == Sign(u)
    assert d.expr == AbsVal(u)
    assert d.grad[0].subs(u, 0) is sp.S.Zero
    assert d.grad[0].subs(u, 2) == 1
    assert d.grad[0].subs(u, -2) == -1
    assert sp.diff(Sign(u), u) == 0


def test_squared_relu_derivative_is_exactly_zero_at_zero() -> None:
    d = user_energy("var z = 0\nenergy sq(u) = relu(u)^2\nfactor f = sq(z)", "sq")
    (u,) = d.slots
    for zero in (sp.Integer(0), sp.Float(0.0)):
        assert d.grad[0].subs(u, zero) is sp.S.Zero
    assert d.grad[0].subs(u, sp.Rational(1, 2)) == 1
    assert d.grad[0].subs(u, -1) == 0
    g = sp.lambdify([u], d.grad[0], modules=[NUMPY_FUNCTIONS, "numpy"])
    values = g(np.array([-1.0, 0.0, 0.5]))
    assert values.tolist() == [0.0, 0.0, 1.0]


def test_stdlib_hinges_have_zero_gradient_at_the_kink() -> None:
    for name, extra in (("directed_hinge", {"w": 1.5}),
                        ("asym_hinge", {"w": 1.5, "alpha": 1, "beta": 1}),
                        ("margin_hinge", {"w": 1.5, "m": 0})):
        d = derive_energy(STDLIB[name], STDLIB)
        point = at(d, x=0.4, y=0.4, **extra)
        for g in d.grad:
            assert g.subs(point) == 0, f"{name} at x = y: {g.subs(point)}"


def test_max_and_min_are_one_sided_at_a_tie() -> None:
    """max(a, b) = a + relu(b - a), min(a, b) = a - relu(a - b): with step(0) = 0 the whole
    derivative goes to the first argument at a tie, so the pair is (1, 0)."""
    text = ("var z[2] = 0\nenergy mx(a, b) = max(a, b)\nenergy mn(a, b) = min(a, b)\n"
            "factor f = mx(z[0], z[1])\nfactor g = mn(z[0], z[1])")
    for name in ("mx", "mn"):
        d = user_energy(text, name)
        a, b = d.slots
        tie = {a: sp.Float(0.3), b: sp.Float(0.3)}
        assert d.expr.subs(tie) == sp.Float(0.3)
        assert [g.subs(tie) for g in d.grad] == [1, 0], name
    mx = user_energy(text, "mx")
    a, b = mx.slots
    assert [g.subs({a: 0.2, b: 0.5}) for g in mx.grad] == [0, 1]
    assert [g.subs({a: 0.5, b: 0.2}) for g in mx.grad] == [1, 0]
    mn = user_energy(text, "mn")
    assert [g.subs({a: 0.2, b: 0.5}) for g in mn.grad] == [1, 0]
    assert [g.subs({a: 0.5, b: 0.2}) for g in mn.grad] == [0, 1]


def test_numpy_helpers_are_one_sided() -> None:
    u = np.array([-1.0, 0.0, 2.0])
    assert NUMPY_FUNCTIONS["Step"](u).tolist() == [0.0, 0.0, 1.0]
    assert NUMPY_FUNCTIONS["Relu"](u).tolist() == [0.0, 0.0, 2.0]
    assert NUMPY_FUNCTIONS["Sign"](u).tolist() == [-1.0, 0.0, 1.0]


def test_symbolic_power_gradient_is_finite_at_zero() -> None:
    d = derive_energy(STDLIB["damped_gate_benefit"], STDLIB)
    point = at(d, g=0, w=1, delta=0.3, damping=1, p=2, pos=1, neg=1)
    value = d.grad[0].subs(point)
    assert value.is_finite and value == 0


# ---------------------------------------------------------------- nothing unprintable
@pytest.mark.parametrize("name", sorted(STDLIB))
def test_stdlib_derivation_has_no_heaviside_or_diracdelta(name: str) -> None:
    d = derive_energy(STDLIB[name], STDLIB)
    assert_printable(d.expr, f"{name}")
    for s, g in zip(d.slots, d.grad, strict=True):
        assert_printable(g, f"d{name}/d{s}")
        for s2 in d.slots:  # second derivatives too: Step and Sign differentiate to 0
            assert_printable(sp.diff(g, s2), f"d2{name}/d{s}d{s2}")


def test_user_energy_with_every_builtin_has_no_heaviside_or_diracdelta() -> None:
    d = all_derived()["builtins"]
    for fn in ("exp", "log", "sin", "cos", "tanh"):
        assert d.expr.has(getattr(sp, fn)), fn
    for cls in (AbsVal, Relu):
        assert d.expr.has(cls)
    assert d.expr.has(symbol("u") ** symbol("p"))
    assert_printable(d.expr, "builtins")
    for s, g in zip(d.slots, d.grad, strict=True):
        assert_printable(g, f"dbuiltins/d{s}")
        for s2 in d.slots:
            assert_printable(sp.diff(g, s2), f"d2builtins/d{s}d{s2}")


def test_generated_c_has_no_heaviside_or_diracdelta() -> None:
    model = load_source(ALL_ENERGIES_MODEL, "all_energies.cfc")
    assert {e.name for e in model.used_energies} == set(STDLIB) | {"builtins"}
    # the curvature bounds (codegen/bounds.py: their helpers, then one function after each
    # energy's kernels) may hold +inf, a legitimate bound; each part opens with a comment
    parts = re.split(r"(?m)^(?=/\* )", render_model(model).source)
    bound = [p.startswith(("/* Curvature bounds", "/* bound ")) for p in parts]
    source = "".join(p for p, b in zip(parts, bound, strict=True) if not b)
    bounds = "".join(p for p, b in zip(parts, bound, strict=True) if b)
    assert "cfc__hb_round" in bounds and "void cfc_hb_landau" in bounds
    assert "cfc_hb_" not in source and "cfc__hb_" not in source
    for word in ("Heaviside", "DiracDelta", "Piecewise", "Derivative", "Subs", "Max(", "Min(",
                 "Abs(", "sign(", "Not supported", "HUGE_VAL", "NAN", "INFINITY"):
        assert word not in source.replace("cfc_sign(", ""), f"{word!r} in the generated C"
        if word not in ("INFINITY", "sign("):
            assert word not in bounds, f"{word!r} in the generated bounds"
    assert not re.search(r"\b(zoo|nan|oo)\b", source + bounds)
    for helper in ("cfc_relu(", "cfc_step(", "cfc_sign(", "cfc_sigmoid(", "cfc_softplus(",
                   "fabs(", "pow("):
        assert helper in source.split("cfc_sum_add", 1)[1], helper
