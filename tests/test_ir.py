"""Lowering: the relu/step fold and the CSE'd kernel IR."""

from __future__ import annotations

import numpy as np
import sympy as sp

from cfc_dsl.codegen.ir import fold_relu_step
from cfc_dsl.functions import NUMPY_FUNCTIONS, Relu, Step

u, v, w = sp.symbols("u v w", real=True)


def _numeric(expr: sp.Expr):  # type: ignore[no-untyped-def]
    return sp.lambdify((u, v, w), expr, modules=[NUMPY_FUNCTIONS, "numpy"])


def test_fold_removes_the_step_of_a_squared_hinge_gradient() -> None:
    grad = sp.diff(w * Relu(v - u) ** 2, u)
    assert grad.has(Step)
    folded = fold_relu_step(grad)
    assert not folded.has(Step)
    assert folded.has(Relu)


def test_fold_is_exact_everywhere_including_nan_and_infinities() -> None:
    grad = sp.diff(w * Relu(2 * v - u) ** 3, v)
    before, after = _numeric(grad), _numeric(fold_relu_step(grad))
    values = np.array([-np.inf, -1.0, -1e-300, 0.0, 1e-300, 0.5, 1.0, np.inf, np.nan])
    uu, vv = np.meshgrid(values, values)
    with np.errstate(all="ignore"):
        a, b = before(uu, vv, 1.5), after(uu, vv, 1.5)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_array_equal(a[~np.isnan(a)], b[~np.isnan(b)])


def test_fold_keeps_a_step_of_another_argument() -> None:
    expr = Relu(u) ** 2 * Step(v)
    assert fold_relu_step(expr) == expr
    lone = w * Step(u)  # no relu(u) factor: the step is the whole derivative
    assert fold_relu_step(lone) == lone
