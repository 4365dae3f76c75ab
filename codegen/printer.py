"""The expression printer shared by the C and CUDA renderers.

A subclass of SymPy's C99 printer: small integer powers become multiplications, and cfc's
own functions (relu, step, sign, sigmoid, softplus) print as calls to the inline helpers
that every generated file defines, so no Heaviside or DiracDelta can reach the output.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.c import C99CodePrinter


class CfcCodePrinter(C99CodePrinter):
    printmethod = "_cfc_ccode"

    def _print_Pow(self, expr: sp.Pow) -> str:
        base, exp = expr.as_base_exp()
        if exp.is_Integer and 1 <= abs(int(exp)) <= 8:
            term = self._print(base) if base.is_Atom else f"({self._print(base)})"
            product = "*".join([term] * abs(int(exp)))
            return f"({product})" if int(exp) > 0 else f"(1.0/({product}))"
        if exp == sp.Rational(1, 2):
            return f"sqrt({self._print(base)})"
        if exp == -sp.Rational(1, 2):
            return f"(1.0/sqrt({self._print(base)}))"
        return f"pow({self._print(base)}, {self._print(exp)})"

    def _helper(self, name: str, expr: sp.Function) -> str:
        return f"cfc_{name}({self._print(expr.args[0])})"

    def _print_Relu(self, expr: sp.Function) -> str:
        return self._helper("relu", expr)

    def _print_Step(self, expr: sp.Function) -> str:
        return self._helper("step", expr)

    def _print_Sign(self, expr: sp.Function) -> str:
        return self._helper("sign", expr)

    def _print_AbsVal(self, expr: sp.Function) -> str:
        return f"fabs({self._print(expr.args[0])})"

    def _print_Sigmoid(self, expr: sp.Function) -> str:
        return self._helper("sigmoid", expr)

    def _print_Softplus(self, expr: sp.Function) -> str:
        return self._helper("softplus", expr)

    def _print_Heaviside(self, expr: sp.Expr) -> str:
        raise ValueError("Heaviside reached the C printer; use Step")

    def _print_DiracDelta(self, expr: sp.Expr) -> str:
        raise ValueError("DiracDelta reached the C printer")


_PRINTER = CfcCodePrinter()


def ccode(expr: sp.Expr) -> str:
    return _PRINTER.doprint(expr)
