"""Mathematical notation for figures: expressions as Unicode text or as LaTeX.

`format_expr` (in model.py) prints canonical source text; the printers here print what a
paper shows: ``a·x² + b·x⁴ − h·x`` for graphviz labels and ``a x^{2} + b x^{4} - h x`` for
TikZ. Greek parameter names become letters (``delta`` -> Δ, ``eta`` -> η).
"""

from __future__ import annotations

from cfc_dsl import syntax as ast
from cfc_dsl.model import PRECEDENCE

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
_LATEX_FUNCS = {"exp": r"\exp", "log": r"\log", "tanh": r"\tanh", "sin": r"\sin",
                "cos": r"\cos", "min": r"\min", "max": r"\max"}
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


def _number(expr: ast.Number) -> str:
    return str(int(expr.value)) if expr.is_integer else f"{expr.value:g}"


def unicode_expr(expr: ast.Expr, parent: int = 0) -> str:
    """An expression as Unicode math: minus signs, superscripts, Greek letters, middle dots."""
    if isinstance(expr, ast.Number):
        return _number(expr)
    if isinstance(expr, ast.Name):
        return unicode_name(expr.name)
    if isinstance(expr, ast.Index):
        return f"{unicode_name(expr.name)}[{', '.join(unicode_expr(i) for i in expr.indices)}]"
    if isinstance(expr, ast.Call):
        args = [unicode_expr(a.value) for a in expr.slot_args]
        if expr.name == "abs" and len(args) == 1:
            return f"|{args[0]}|"
        params = [f"{a.keyword} = " * bool(a.keyword) + unicode_expr(a.value)
                  for a in expr.param_args]
        return f"{expr.name}({', '.join(args)}{'; ' + ', '.join(params) if params else ''})"
    if isinstance(expr, ast.Unary):
        prec = PRECEDENCE["neg" if expr.op == "-" else "not"]
        text = ("−" if expr.op == "-" else "¬") + unicode_expr(expr.operand, prec)
        return f"({text})" if prec < parent else text
    assert isinstance(expr, ast.Binary)
    prec = PRECEDENCE[expr.op]
    if expr.op == "^":
        base = unicode_expr(expr.left, prec + 1)
        power = unicode_expr(expr.right, prec)
        raised = all(c in _SUPERSCRIPT for c in power)
        text = base + ("".join(_SUPERSCRIPT[c] for c in power) if raised else f"^({power})")
    else:
        op = {"-": " − ", "*": "·", "<=": " ≤ ", ">=": " ≥ ", "!=": " ≠ ", "==": " = ", "and": " ∧ ",
              "or": " ∨ "}.get(expr.op, f" {expr.op} ")
        text = unicode_expr(expr.left, prec) + op + unicode_expr(expr.right, prec + 1)
    return f"({text})" if prec < parent else text


def latex_expr(expr: ast.Expr, parent: int = 0) -> str:
    """An expression as LaTeX math (without the surrounding dollars)."""
    if isinstance(expr, ast.Number):
        return _number(expr)
    if isinstance(expr, ast.Name):
        return latex_name(expr.name)
    if isinstance(expr, ast.Index):
        return f"{latex_name(expr.name)}[{', '.join(latex_expr(i) for i in expr.indices)}]"
    if isinstance(expr, ast.Call):
        args = [latex_expr(a.value) for a in expr.slot_args]
        if expr.name == "abs" and len(args) == 1:
            return rf"\lvert {args[0]} \rvert"
        if expr.name == "sqrt" and len(args) == 1:
            return rf"\sqrt{{{args[0]}}}"
        name = _LATEX_FUNCS.get(expr.name, r"\operatorname{" + tex_escape(expr.name) + "}")
        params = [(tex_escape(a.keyword or "") + " = ") * bool(a.keyword) + latex_expr(a.value)
                  for a in expr.param_args]
        inner = ", ".join(args) + ("; " + ", ".join(params) if params else "")
        return rf"{name}({inner})"
    if isinstance(expr, ast.Unary):
        prec = PRECEDENCE["neg" if expr.op == "-" else "not"]
        text = ("-" if expr.op == "-" else r"\lnot ") + latex_expr(expr.operand, prec)
        return f"({text})" if prec < parent else text
    assert isinstance(expr, ast.Binary)
    prec = PRECEDENCE[expr.op]
    if expr.op == "^":
        text = f"{latex_expr(expr.left, prec + 1)}^{{{latex_expr(expr.right)}}}"
    elif expr.op == "/":
        text = rf"\frac{{{latex_expr(expr.left)}}}{{{latex_expr(expr.right)}}}"
    elif expr.op == "*":
        right = latex_expr(expr.right, prec + 1)
        sep = r" \cdot " if right[:1].isdigit() or right.startswith("-") else r"\,"
        text = latex_expr(expr.left, prec) + sep + right
    else:
        op = {"//": r" \mathbin{/\!/} ", "%": r" \bmod ", "<=": r" \le ", ">=": r" \ge ",
              "!=": r" \ne ", "==": " = ", "and": r" \land ", "or": r" \lor "}.get(
                  expr.op, f" {expr.op} ")
        text = latex_expr(expr.left, prec) + op + latex_expr(expr.right, prec + 1)
    return f"({text})" if prec < parent else text
