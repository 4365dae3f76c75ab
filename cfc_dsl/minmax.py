"""Max and Min for the Lipschitz interval enclosures (lipschitz.py), built without SymPy's
pairwise ordering of their arguments (`_is_connected`), which was most of a cold compile:
nested ones flattened, repeats and the identity dropped, numbers folded, the rest unevaluated.
The generated bound kernels are byte-identical to those from SymPy's evaluated Max/Min.
"""

from __future__ import annotations

import sympy as sp


def _minmax(cls: type, args: tuple[sp.Expr, ...]) -> sp.Expr:
    """Max or Min without SymPy's pairwise ordering of the arguments (`_is_connected`, most
    of a cold compile): nested ones flattened, repeats and the identity dropped, numbers
    folded; what is left is built unevaluated."""
    ident, absorb = (sp.S.NegativeInfinity, sp.S.Infinity) if cls is sp.Max else (
        sp.S.Infinity, sp.S.NegativeInfinity)
    flat: dict[sp.Expr, None] = {}
    numbers = []
    for a in args:
        a = sp.sympify(a)
        for b in (a.args if isinstance(a, cls) else (a,)):
            if b == absorb:
                return absorb
            if b == ident:
                continue
            if b.is_Number:
                numbers.append(b)
            else:
                flat[b] = None
    if numbers:
        flat[max(numbers) if cls is sp.Max else min(numbers)] = None
    if not flat:
        return ident
    if len(flat) == 1:
        return next(iter(flat))
    return cls(*flat, evaluate=False)


def max_(*args: sp.Expr) -> sp.Expr:
    return _minmax(sp.Max, args)


def min_(*args: sp.Expr) -> sp.Expr:
    return _minmax(sp.Min, args)


__all__ = ["max_", "min_"]
