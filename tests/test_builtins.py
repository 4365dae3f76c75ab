"""The built-in table (cfc_dsl/builtins.py): each row's faces agree, and every stage uses it.

For every row the NumPy, mpmath and SymPy implementations agree at sample points, the SymPy
derivative matches a central difference of the NumPy implementation, and the interval and
range claims the curvature bounds rely on hold at sample points. The checker accepts exactly
the callable rows (the list in DESIGN.md section 3 plus hazard), the C printer and templates
spell each row as the table says, and the three printer modes give the expected text.
"""

from __future__ import annotations

import math
from importlib import resources

import mpmath
import numpy as np
import pytest
import sympy as sp

from cfc_dsl.builtins import BUILTINS, CALLABLE, Builtin, Interval, Range
from cfc_dsl.codegen.printer import bound_ccode, ccode
from cfc_dsl.diagnostics import CfcError
from cfc_dsl.frontend import load_source
from cfc_dsl.functions import FUNCTION_CLASSES, HEADS, NUMPY_FUNCTIONS, mpmath_functions, sympy_call
from cfc_dsl.model import BUILTIN_FUNCTIONS
from cfc_dsl.notation import PRINTERS, Mode
from cfc_dsl.runtime.bind.evaluate import Env, evaluate

# DESIGN.md section 3: "the built-ins exp log sqrt abs min max relu softplus sigmoid tanh sin
# cos", plus the init helper hazard(net, k = 10)
SPEC_NAMES = {"exp", "log", "sqrt", "abs", "min", "max", "relu", "softplus", "sigmoid", "tanh",
              "sin", "cos", "hazard"}
POSITIVE_ONLY = {"log", "sqrt"}
ONE = (-2.3, -0.7, 0.4, 1.9, 3.2)


def points(b: Builtin) -> list[tuple[float, ...]]:
    """Sample arguments in the row's domain, none on a kink (u = 0, or a = b)."""
    ones = [(abs(u),) for u in ONE] if b.name in POSITIVE_ONLY else [(u,) for u in ONE]
    if b.arity[1] == 1:
        return ones
    pairs = [(u, v) for u in ONE for v in (-1.1, 0.3, 2.6) if u != v]
    return ones + pairs if b.arity[0] == 1 else pairs


def _sympy_value(b: Builtin, args: tuple[float, ...]) -> float:
    expr = sympy_call(b.name, [sp.Float(a, 30) for a in args])
    own = tuple(cls for cls, row in FUNCTION_CLASSES.items() if row.defines_head)
    expr = expr.replace(lambda e: isinstance(e, own), lambda e: e.rewrite(sp.exp))
    return float(expr.evalf(30))


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_numpy_mpmath_and_sympy_agree(name: str) -> None:
    b = BUILTINS[name]
    for args in points(b):
        ref = _sympy_value(b, args)
        np_value = float(b.numpy(np, *[np.float64(a) for a in args]))
        mp_value = float(b.mpmath(mpmath, *[mpmath.mpf(a) for a in args]))
        assert np_value == pytest.approx(ref, rel=1e-12, abs=1e-14), (name, args)
        assert mp_value == pytest.approx(ref, rel=1e-12, abs=1e-14), (name, args)


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_derivative_matches_a_central_difference(name: str) -> None:
    b = BUILTINS[name]
    syms = sp.symbols("u v", real=True)[: b.arity[1]]
    for args in points(b):
        expr = sympy_call(b.name, list(syms[: len(args)]))
        for i in range(len(args)):
            grad = sp.lambdify(syms[: len(args)], sp.diff(expr, syms[i]),
                               [NUMPY_FUNCTIONS, "numpy"])
            h = 1e-6 * max(1.0, abs(args[i]))
            up, down = list(args), list(args)
            up[i] += h
            down[i] -= h
            fd = (float(b.numpy(np, *up)) - float(b.numpy(np, *down))) / (2 * h)
            assert float(grad(*args)) == pytest.approx(fd, rel=1e-6, abs=1e-7), (name, args, i)


@pytest.mark.parametrize("name", sorted(n for n, b in BUILTINS.items() if b.defines_head))
def test_mpmath_takes_the_complex_step(name: str) -> None:
    """Off its kink, f(u + ih) has imaginary part h f'(u): the audit's complex step."""
    head = BUILTINS[name].head
    f, h = mpmath_functions()[head], 1e-30
    u = sp.Symbol("u", real=True)
    grad = sp.lambdify(u, sp.diff(HEADS[head](u), u), [mpmath_functions(), "mpmath"])
    for x in ONE:
        step = mpmath.im(f(mpmath.mpc(x, h))) / h
        assert float(step) == pytest.approx(float(grad(mpmath.mpf(x))), rel=1e-12, abs=1e-30)


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_interval_and_range_rules_hold(name: str) -> None:
    """What the curvature bounds assume of each row, checked on a grid."""
    b = BUILTINS[name]
    if b.arity[0] != 1:
        return
    grid = np.linspace(0.01 if name in POSITIVE_ONLY else -4.0, 4.0, 801)
    values = np.asarray(b.numpy(np, grid), dtype=float)
    if b.interval in (Interval.INCREASING, Interval.LOG, Interval.POWER):
        assert np.all(np.diff(values) >= 0)
    if b.interval is Interval.UNIT:
        assert np.all(np.abs(values) <= 1)
    if b.interval is Interval.ABS:
        assert np.array_equal(values, np.abs(grid))
    if b.range is Range.POSITIVE:
        assert np.all(values > 0)
    if b.range is Range.NONNEG:
        assert np.all(values >= 0)
    assert b.jumps == (values[401] - values[399] > 0.5)  # grid[400] is u = 0


def test_the_checker_accepts_exactly_the_callable_rows() -> None:
    assert set(CALLABLE) == SPEC_NAMES
    assert BUILTIN_FUNCTIONS == {n: b.arity for n, b in CALLABLE.items()}
    for name, b in CALLABLE.items():
        args = ", ".join(["0.5"] * b.arity[0])
        load_source(f"var x[3]\ninit x[i in 0..3] = {name}({args})\n", "t.cfc")
    for name in set(BUILTINS) - set(CALLABLE):  # step and sign exist for derivatives only
        with pytest.raises(CfcError, match="unknown function"):
            load_source(f"var x[3]\ninit x[i in 0..3] = {name}(0.5)\n", "t.cfc")


def test_c_spellings_come_from_the_table() -> None:
    x = sp.Symbol("x", real=True)
    helpers = resources.files("cfc_dsl.templates").joinpath("helpers.c.j2").read_text()
    bounds = resources.files("cfc_dsl.templates").joinpath("bound_helpers.c.j2").read_text()
    for cls, b in FUNCTION_CLASSES.items():
        assert ccode(cls(x)) == f"{b.c}(x)"
        if b.c.startswith("cfc_"):
            hb = "cfc__hb_" + b.c[len("cfc_"):]
            assert bound_ccode(cls(x)) == f"{hb}(x)"
            assert f"double {b.c}(double u)" in helpers
            assert f"double {hb}(double u)" in bounds
    assert ccode(sympy_call("sqrt", [x])) == "sqrt(x)"


def test_bind_time_hazard_is_the_table_formula() -> None:
    """hazard(net, k) = 1 - exp(-softplus(k net)) at bind time: the same value as sigmoid."""
    model = load_source("param net[4] = 0.0\nvar x[4]\n"
                        "init x[i in 0..4] = hazard(net[i], k = 3)\n", "t.cfc")
    net = np.array([-2.0, -0.1, 0.3, 1.5])
    value = evaluate(model.inits[0].value, Env({}, {"net": net}, {"i": np.arange(4)}))
    assert np.array_equal(value, 1.0 - np.exp(-np.logaddexp(0.0, 3 * net)))
    assert value == pytest.approx([1 / (1 + math.exp(-3 * n)) for n in net], rel=1e-14)


def _body(formula: str) -> object:
    text = f"energy e(x, y; a, b, h, w, alpha, beta, delta) = {formula}\n"
    return load_source(text, "t.cfc").energy("e").body


@pytest.mark.parametrize(("formula", "source", "unicode", "latex"), [
    ("a*x^2 + b*x^4 - h*x", "a * x^2 + b * x^4 - h * x", "a·x² + b·x⁴ − h·x",
     r"a\,x^{2} + b\,x^{4} - h\,x"),
    ("w * relu(beta*y - alpha*x)^2", "w * relu(beta * y - alpha * x)^2",
     "w·relu(β·y − α·x)²", r"w\,\operatorname{relu}(\beta\,y - \alpha\,x)^{2}"),
    ("abs(x - y) / sqrt(1 + x^2)", "abs(x - y) / sqrt(1 + x^2)", "|x − y| / sqrt(1 + x²)",
     r"\frac{\lvert x - y \rvert}{\sqrt{1 + x^{2}}}"),
    ("-w*delta*exp(-(x - 0.25)^a)", "-w * delta * exp(-(x - 0.25)^a)",
     "−w·Δ·exp(−(x − 0.25)ᵃ)", r"-w\,\Delta\,\exp(-(x - 0.25)^{a})"),
])
def test_the_three_printer_modes(formula: str, source: str, unicode: str, latex: str) -> None:
    body = _body(formula)
    assert PRINTERS[Mode.SOURCE](body) == source
    assert PRINTERS[Mode.UNICODE](body) == unicode
    assert PRINTERS[Mode.LATEX](body) == latex
