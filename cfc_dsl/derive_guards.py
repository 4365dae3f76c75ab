"""Guards of the derive stage: constants a C double cannot hold, and inlining that explodes.

A body such as `x/0`, `log(0)*x`, `sqrt(-1)*x` or `(-8)^(1/3)*x` makes SymPy produce zoo, nan
or I, which no printer can turn into C. Derive checks the result once; only when something is
wrong does it translate again, node by node, to blame the smallest construct that made it.
Inlining is budgeted: each translated node counts, and past the limit the call chain is named.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import sympy as sp

from cfc_dsl import syntax as ast
from cfc_dsl.diagnostics import CfcError, ErrorKind, Span
from cfc_dsl.notation import format_expr

DBL_MAX = sp.Float(sys.float_info.max)
MAX_INLINED_NODES = 20_000  # the largest example model's energy expands to a few hundred
_UNDEFINED = {sp.zoo: "is infinite or undefined (a division by zero or a log of 0)",
              sp.nan: "is undefined (not a number)",
              sp.oo: "is infinite", -sp.oo: "is infinite"}


def constant_problem(e: sp.Basic) -> str:
    """Why `e` cannot be evaluated in double arithmetic ('' when it can)."""
    for atom, why in _UNDEFINED.items():
        if e.has(atom):
            return why
    if e.has(sp.I):
        return "is not a real number"
    if any(abs(n) > DBL_MAX for n in e.atoms(sp.Number)):
        return f"does not fit a double (its magnitude passes {sys.float_info.max:.4g})"
    if any(not p.free_symbols and p.is_extended_real is False for p in e.atoms(sp.Pow)):
        return "is not a real number (a fractional power of a negative number)"
    return ""


def domain_error(node: ast.Expr, why: str) -> CfcError:
    text = format_expr(node)
    return CfcError(ErrorKind.SEMANTIC, f"'{text}' {why}", node.span,
                    f"change '{text}' so that it is a finite real number for every input")


def literal_error(node: ast.Number) -> CfcError:
    return CfcError(ErrorKind.SEMANTIC, "this number does not fit a double", node.span,
                    f"use a literal of at most {sys.float_info.max:.4g} in magnitude")


@dataclass
class InlineBudget:
    """Counts translated nodes of one energy, with the chain of energies being inlined."""

    energy: str
    limit: int = MAX_INLINED_NODES
    nodes: int = 0
    chain: list[tuple[str, Span]] = field(default_factory=list)

    def spend(self, node: ast.Expr) -> None:
        self.nodes += 1
        if self.nodes <= self.limit:
            return
        names = " -> ".join([self.energy] + [name for name, _ in self.chain])
        span = self.chain[0][1] if self.chain else node.span
        raise CfcError(ErrorKind.SEMANTIC,
                       f"energy '{self.energy}' grows past {self.limit} operations when the "
                       f"energies it calls are inlined ({names})", span,
                       "each call copies the callee's body; call an energy once and reuse it "
                       "through a parameter, or write the expression out")
