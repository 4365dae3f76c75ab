"""Expression notation: one precedence printer over the syntax tree, in three modes.

`Mode.SOURCE` prints canonical .cfc text (`format_expr`: energy formulas, `kernel_spec()` and
so the cache key); `Mode.UNICODE` and `Mode.LATEX` print what a paper shows, ``a·x² + b·x⁴ −
h·x`` for graphviz labels and ``a x^{2} + b x^{4} - h x`` for TikZ. Greek parameter names
become letters (``delta`` -> Δ, ``eta`` -> η); built-ins take their notation from their row.
"""

from __future__ import annotations

from enum import Enum

from cfc_dsl import syntax as ast
from cfc_dsl.builtins import CALLABLE, Builtin

PRECEDENCE = {"or": 1, "and": 2, "not": 3, "<": 4, "<=": 4, ">": 4, ">=": 4, "==": 4, "!=": 4,
              "+": 5, "-": 5, "*": 6, "/": 6, "//": 6, "%": 6, "neg": 7, "^": 8}

GREEK = {
    "alpha": ("α", r"\alpha"), "beta": ("β", r"\beta"), "gamma": ("γ", r"\gamma"),
    "delta": ("Δ", r"\Delta"), "epsilon": ("ε", r"\varepsilon"), "zeta": ("ζ", r"\zeta"),
    "eta": ("η", r"\eta"), "theta": ("θ", r"\theta"), "kappa": ("κ", r"\kappa"),
    "lambda": ("λ", r"\lambda"), "mu": ("μ", r"\mu"), "nu": ("ν", r"\nu"), "xi": ("ξ", r"\xi"),
    "pi": ("π", r"\pi"), "rho": ("ρ", r"\rho"), "sigma": ("σ", r"\sigma"), "tau": ("τ", r"\tau"),
    "phi": ("φ", r"\phi"), "chi": ("χ", r"\chi"), "psi": ("ψ", r"\psi"),
    "omega": ("ω", r"\omega"),
}
_SUPERSCRIPT = dict(zip("0123456789+−()abcdefghijklmnoprstuvwxyz",
                        "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ", strict=True))
_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_TEX_SPECIAL = {"\\": r"\textbackslash{}", "_": r"\_", "&": r"\&", "%": r"\%", "$": r"\$",
                "#": r"\#", "{": r"\{", "}": r"\}", "^": r"\^{}", "~": r"\~{}"}


def tex_escape(text: str) -> str:
    """Plain text safe inside LaTeX."""
    return "".join(_TEX_SPECIAL.get(c, c) for c in text)


def unicode_name(name: str) -> str:
    return GREEK[name][0] if name in GREEK else name


def latex_name(name: str) -> str:
    if name in GREEK:
        return GREEK[name][1]
    if len(name) == 1:
        return name
    return r"\mathit{" + tex_escape(name) + "}"


def unicode_element(name: str, index: tuple[int, ...]) -> str:
    """'η₃' for eta[3]; 'x₁,₂' for x[1, 2]; a scalar keeps its name."""
    if not index:
        return unicode_name(name)
    return unicode_name(name) + ",".join(str(i).translate(_SUBSCRIPT) for i in index)


def latex_element(name: str, index: tuple[int, ...]) -> str:
    if not index:
        return latex_name(name)
    return f"{latex_name(name)}_{{{','.join(map(str, index))}}}"


class Mode(Enum):
    SOURCE = "source"
    UNICODE = "unicode"
    LATEX = "latex"


class ExprPrinter:
    """The source mode, and the walk every mode shares: minimal parentheses by precedence.
    A mode changes only the hooks (numbers, names, calls, operators, powers)."""

    unary_ops = {"-": "-", "not": "not "}
    binary_ops: dict[str, str] = {}  # spelling with spacing; the default is " op "

    def __call__(self, expr: ast.Expr, parent: int = 0) -> str:
        if isinstance(expr, ast.Number):
            return self.number(expr)
        if isinstance(expr, ast.Name):
            return self.name(expr.name)
        if isinstance(expr, ast.Index):
            return f"{self.name(expr.name)}[{', '.join(self(i) for i in expr.indices)}]"
        if isinstance(expr, ast.Call):
            return self.call(expr)
        if isinstance(expr, ast.Unary):
            prec = PRECEDENCE["neg" if expr.op == "-" else "not"]
            text = self.unary_ops[expr.op] + self(expr.operand, prec)
        else:
            assert isinstance(expr, ast.Binary)
            prec = PRECEDENCE[expr.op]
            text = self.power(expr, prec) if expr.op == "^" else self.binary(expr, prec)
        return f"({text})" if prec < parent else text

    def number(self, expr: ast.Number) -> str:
        return str(int(expr.value)) if expr.is_integer else repr(expr.value)

    def name(self, name: str) -> str:
        return name

    def call(self, expr: ast.Call) -> str:
        slots = ", ".join(self.argument(a) for a in expr.slot_args)
        params = ", ".join(self.argument(a) for a in expr.param_args)
        return f"{expr.name}({slots}{'; ' + params if expr.has_separator else ''})"

    def argument(self, arg: ast.Argument) -> str:
        return (f"{arg.keyword} = " if arg.keyword else "") + self(arg.value)

    def power(self, expr: ast.Binary, prec: int) -> str:
        return f"{self(expr.left, prec + 1)}^{self(expr.right, prec)}"

    def binary(self, expr: ast.Binary, prec: int) -> str:
        op = self.binary_ops.get(expr.op, f" {expr.op} ")
        return self(expr.left, prec) + op + self(expr.right, prec + 1)


class _MathPrinter(ExprPrinter):
    """What the two math modes share: %g numbers, positional arguments, built-in forms."""

    def number(self, expr: ast.Number) -> str:
        return str(int(expr.value)) if expr.is_integer else f"{expr.value:g}"

    def call(self, expr: ast.Call) -> str:
        args = [self(a.value) for a in expr.slot_args]
        row = CALLABLE.get(expr.name)
        form = self.call_form(row) if row else ""
        if form and len(args) == 1:
            return form.format(args[0])
        params = [self.keyword(a.keyword) + self(a.value) if a.keyword else self(a.value)
                  for a in expr.param_args]
        inner = ", ".join(args) + ("; " + ", ".join(params) if params else "")
        return f"{self.function(expr.name, row)}({inner})"

    def call_form(self, row: Builtin) -> str:
        return ""

    def keyword(self, name: str) -> str:
        return f"{name} = "

    def function(self, name: str, row: Builtin | None) -> str:
        return name


class UnicodePrinter(_MathPrinter):
    """Unicode math: minus signs, superscripts, Greek letters, middle dots."""

    unary_ops = {"-": "−", "not": "¬"}
    binary_ops = {"-": " − ", "*": "·", "<=": " ≤ ", ">=": " ≥ ", "!=": " ≠ ", "==": " = ",
                  "and": " ∧ ", "or": " ∨ "}

    def name(self, name: str) -> str:
        return unicode_name(name)

    def call_form(self, row: Builtin) -> str:
        return row.unicode

    def power(self, expr: ast.Binary, prec: int) -> str:
        base, power = self(expr.left, prec + 1), self(expr.right, prec)
        if all(c in _SUPERSCRIPT for c in power):
            return base + "".join(_SUPERSCRIPT[c] for c in power)
        return f"{base}^({power})"


class LatexPrinter(_MathPrinter):
    """LaTeX math, without the surrounding dollars."""

    unary_ops = {"-": "-", "not": r"\lnot "}
    binary_ops = {"//": r" \mathbin{/\!/} ", "%": r" \bmod ", "<=": r" \le ", ">=": r" \ge ",
                  "!=": r" \ne ", "==": " = ", "and": r" \land ", "or": r" \lor "}

    def name(self, name: str) -> str:
        return latex_name(name)

    def call_form(self, row: Builtin) -> str:
        return row.latex_call

    def keyword(self, name: str) -> str:
        return tex_escape(name) + " = "

    def function(self, name: str, row: Builtin | None) -> str:
        return row.latex if row and row.latex else r"\operatorname{" + tex_escape(name) + "}"

    def power(self, expr: ast.Binary, prec: int) -> str:
        return f"{self(expr.left, prec + 1)}^{{{self(expr.right)}}}"

    def binary(self, expr: ast.Binary, prec: int) -> str:
        if expr.op == "/":
            return rf"\frac{{{self(expr.left)}}}{{{self(expr.right)}}}"
        if expr.op == "*":
            right = self(expr.right, prec + 1)
            sep = r" \cdot " if right[:1].isdigit() or right.startswith("-") else r"\,"
            return self(expr.left, prec) + sep + right
        return super().binary(expr, prec)


PRINTERS: dict[Mode, ExprPrinter] = {Mode.SOURCE: ExprPrinter(), Mode.UNICODE: UnicodePrinter(),
                                     Mode.LATEX: LatexPrinter()}


def format_expr(expr: ast.Expr, parent: int = 0) -> str:
    """Canonical source text of an expression (minimal parentheses)."""
    return PRINTERS[Mode.SOURCE](expr, parent)


def unicode_expr(expr: ast.Expr, parent: int = 0) -> str:
    """An expression as Unicode math: minus signs, superscripts, Greek letters, middle dots."""
    return PRINTERS[Mode.UNICODE](expr, parent)


def latex_expr(expr: ast.Expr, parent: int = 0) -> str:
    """An expression as LaTeX math (without the surrounding dollars)."""
    return PRINTERS[Mode.LATEX](expr, parent)
