"""The expression printer shared by the C and CUDA renderers.

A subclass of SymPy's C99 printer: small integer powers become multiplications, and every
built-in prints with the C spelling of its row in cfc_dsl/builtins.py; cfc's own functions
(relu, step, sign, sigmoid, softplus) are calls to the inline helpers that every generated
file defines, so no Heaviside or DiracDelta can reach the output.
`BoundCodePrinter` prints the curvature bounds (codegen/bounds.py): Piecewise, Max, Min and
the logic of their conditions, with helpers that let NaN through as NumPy does.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp
from sympy.printing.c import C99CodePrinter

from cfc_dsl.functions import FUNCTION_CLASSES

HELPER_PREFIX = "cfc_"  # a C spelling with this prefix names a helper of helpers.c.j2


EXACT_INT = 2**53  # every integer of smaller magnitude is exactly a double


def c99_math_macros() -> dict[sp.Expr, str]:
    """The constants C99CodePrinter prints as math.h macros (pi -> M_PI), as SymPy's
    `get_math_macros` lists them less its entries keyed by sympy.codegen.cfunctions nodes
    (log2(E), Sqrt(2), ...), which no derived expression holds: building SymPy's table
    imports that module, ~30 ms of every compile. tests/test_codegen.py compares the two."""
    e, pi, sqrt, log = sp.E, sp.pi, sp.sqrt, sp.log
    return {e: "M_E", 1 / log(2): "M_LOG2E", log(2): "M_LN2", log(10): "M_LN10", pi: "M_PI",
            pi / 2: "M_PI_2", pi / 4: "M_PI_4", 1 / pi: "M_1_PI", 2 / pi: "M_2_PI",
            2 / sqrt(pi): "M_2_SQRTPI", sqrt(2): "M_SQRT2", 1 / sqrt(2): "M_SQRT1_2"}


class CfcCodePrinter(C99CodePrinter):
    printmethod = "_cfc_ccode"
    math_macros = c99_math_macros()  # set here, so C99CodePrinter builds no table of its own

    def _print_Integer(self, expr: sp.Integer) -> str:
        """Past 2^53 an integer literal would be C's (truncated past 2^64) but Python's exact;
        as a floating literal (the nearest double) both backends round it the same way."""
        if abs(int(expr)) < EXACT_INT:
            return super()._print_Integer(expr)
        return repr(float(int(expr)))  # derive refused magnitudes past DBL_MAX

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

    def _spell(self, c_name: str) -> str:
        """The name a built-in's C spelling takes in this printer's output."""
        return c_name

    def _builtin(self, c_name: str, expr: sp.Function) -> str:
        return f"{self._spell(c_name)}({', '.join(self._print(a) for a in expr.args)})"

    def _print_Heaviside(self, expr: sp.Expr) -> str:
        raise ValueError("Heaviside reached the C printer; use Step")

    def _print_DiracDelta(self, expr: sp.Expr) -> str:
        raise ValueError("DiracDelta reached the C printer")

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        """Nested ternaries on one line (SymPy's spans several): the Hessian's guards."""
        out = "NAN"  # no branch holds
        for value, cond in reversed(expr.args):
            code = self._print(value)
            out = code if cond == sp.true else f"(({self._print(cond)}) ? ({code}) : ({out}))"
        return out


class BoundCodePrinter(CfcCodePrinter):
    """One-line C for a bound entry: `cfc__hb_*` helpers (host code in both targets), Max/Min
    that return NaN if an argument is NaN (as numpy.amax does; fmax would drop it), nested
    ternaries for Piecewise, and every operand of && and || in parentheses (-Wparentheses).
    Arguments of Max, Min, And, Or are sorted, so the text does not depend on hash order."""

    printmethod = "_cfc_bound_ccode"

    def _spell(self, c_name: str) -> str:
        if c_name.startswith(HELPER_PREFIX):
            return "cfc__hb_" + c_name[len(HELPER_PREFIX):]
        return c_name

    def _lattice(self, name: str, expr: sp.Expr) -> str:
        args = sorted(expr.args, key=sp.default_sort_key)
        out = self._print(args[-1])
        for a in reversed(args[:-1]):
            out = f"cfc__hb_{name}({self._print(a)}, {out})"
        return out

    def _print_Max(self, expr: sp.Expr) -> str:
        return self._lattice("max", expr)

    def _print_Min(self, expr: sp.Expr) -> str:
        return self._lattice("min", expr)

    def _logic(self, op: str, expr: sp.Basic) -> str:
        args = sorted(expr.args, key=sp.default_sort_key)
        grouped = (sp.And, sp.Or, sp.Not)  # these print their own parentheses
        return "(" + f" {op} ".join(self._print(a) if isinstance(a, grouped) else
                                    f"({self._print(a)})" for a in args) + ")"

    def _print_And(self, expr: sp.Basic) -> str:
        return self._logic("&&", expr)

    def _print_Or(self, expr: sp.Basic) -> str:
        return self._logic("||", expr)

    def _print_Not(self, expr: sp.Basic) -> str:
        return f"(!({self._print(expr.args[0])}))"

    def _print_BooleanTrue(self, expr: sp.Basic) -> str:
        return "1"

    def _print_BooleanFalse(self, expr: sp.Basic) -> str:
        return "0"

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        out = "NAN"  # no branch holds: undefined, as numpy.select's default
        for value, cond in reversed(expr.args):
            code = self._print(value)
            test = self._print(cond)
            test = test if isinstance(cond, (sp.And, sp.Or, sp.Not)) else f"({test})"
            out = code if cond == sp.true else f"({test} ? ({code}) : ({out}))"
        return out


def _print_method(c_name: str) -> Callable[[CfcCodePrinter, sp.Function], str]:
    def method(self: CfcCodePrinter, expr: sp.Function) -> str:
        return self._builtin(c_name, expr)

    return method


for _cls, _row in FUNCTION_CLASSES.items():  # _print_exp, _print_Relu, ... from the table
    setattr(CfcCodePrinter, f"_print_{_cls.__name__}", _print_method(_row.c))


_PRINTER = CfcCodePrinter()
_BOUND_PRINTER = BoundCodePrinter()


def ccode(expr: sp.Expr) -> str:
    return _PRINTER.doprint(expr)


def bound_ccode(expr: sp.Expr) -> str:
    return _BOUND_PRINTER.doprint(expr)
