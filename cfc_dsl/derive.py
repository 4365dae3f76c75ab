"""Derive stage: an energy -> its SymPy expression and exact gradient (per energy).

Derivation is per energy, never per instance: the graph is runtime data. Calls to other
energies are inlined; built-ins come from their rows of the table (`functions.sympy_call`).
The result is plain frozen data the lowering stage (codegen/) turns into CSE'd kernel IR.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sympy as sp

from cfc_dsl import syntax as ast
from cfc_dsl.arguments import match_arguments
from cfc_dsl.builtins import CALLABLE
from cfc_dsl.functions import sympy_call
from cfc_dsl.model import EnergySpec, Model


@dataclass(frozen=True)
class DerivedEnergy:
    name: str
    slots: tuple[sp.Symbol, ...]
    params: tuple[sp.Symbol, ...]
    expr: sp.Expr
    grad: tuple[sp.Expr, ...]

    @cached_property
    def hess(self) -> tuple[tuple[sp.Expr, ...], ...]:
        """The exact Hessian (k x k, symmetric), derived on first use: Step and Sign
        differentiate to 0, the same one-sided rules as the gradient's."""
        rows = [[sp.S.Zero] * len(self.slots) for _ in self.slots]
        for i, g in enumerate(self.grad):
            for j in range(i, len(self.slots)):
                h = sp.powsimp(sp.diff(g, self.slots[j])).replace(sp.DiracDelta,
                                                                  lambda *a: sp.S.Zero)
                rows[i][j] = rows[j][i] = _guard_zero_coefficients(h, set(self.slots))
        return tuple(map(tuple, rows))


def symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


def derive_energy(energy: EnergySpec, energies: dict[str, EnergySpec]) -> DerivedEnergy:
    slots = tuple(symbol(s) for s in energy.slots)
    params = tuple(symbol(p) for p in energy.param_names)
    env = {s.name: s for s in slots + params}
    expr = to_sympy(energy.body, env, energies)
    # powsimp folds SymPy's p*g**p/g into p*g**(p - 1), which is finite at g = 0
    grad = tuple(sp.powsimp(sp.diff(expr, s)) for s in slots)
    return DerivedEnergy(energy.name, slots, params, expr, grad)


def _guard_zero_coefficients(h: sp.Expr, slots: set[sp.Symbol]) -> sp.Expr:
    """c(p) * u**e(p) -> 0 where c(p) = 0: exact (it is the derivative of a constant or
    linear power, g**1 or g**0), and it spares 0 * pow(0, -1) = NaN at u = 0."""
    def guard(term: sp.Expr) -> sp.Expr:
        powers = [f for f in term.args if f.is_Pow and f.base.free_symbols & slots
                  and f.exp.free_symbols and not f.exp.free_symbols & slots]
        coefficient = sp.Mul(*[f for f in term.args if not f.free_symbols & slots])
        if not powers or not coefficient.free_symbols:
            return term
        return sp.Piecewise((sp.S.Zero, sp.Eq(coefficient, 0)), (term, True))

    return h.replace(lambda e: e.is_Mul, guard)


def derive_model(model: Model) -> tuple[DerivedEnergy, ...]:
    energies = {e.name: e for e in model.energies}
    return tuple(derive_energy(e, energies) for e in model.used_energies)


def to_sympy(expr: ast.Expr, env: dict[str, sp.Expr], energies: dict[str, EnergySpec]) -> sp.Expr:
    """Translate a checked expression; `env` maps slot and parameter names to SymPy terms."""
    if isinstance(expr, ast.Number):
        if expr.is_integer:
            return sp.Integer(int(expr.value))
        return sp.Float(expr.value, 17) if not float(expr.value).is_integer() else \
            sp.Float(expr.value, 17)
    if isinstance(expr, ast.Name):
        return env[expr.name]
    if isinstance(expr, ast.Unary):
        return -to_sympy(expr.operand, env, energies)
    if isinstance(expr, ast.Binary):
        a = to_sympy(expr.left, env, energies)
        b = to_sympy(expr.right, env, energies)
        ops = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
               "^": lambda: a ** b}
        return ops[expr.op]()
    if isinstance(expr, ast.Call):
        if expr.name in CALLABLE:
            args = [to_sympy(a.value, env, energies) for a in expr.slot_args]
            return sympy_call(expr.name, args)
        callee = energies[expr.name]
        sub_env = _call_env(expr, callee, env, energies)
        return to_sympy(callee.body, sub_env, energies)
    raise TypeError(f"cannot translate {type(expr).__name__} in an energy body")


def _call_env(call: ast.Call, callee: EnergySpec, env: dict[str, sp.Expr],
              energies: dict[str, EnergySpec]) -> dict[str, sp.Expr]:
    """Map the callee's slot and parameter names to the caller's argument expressions."""
    bound = {name: to_sympy(arg, env, energies)
             for name, arg in match_arguments(callee, call).items()}
    for p in callee.params:
        if p.name not in bound:
            assert p.default is not None
            bound[p.name] = to_sympy(p.default, {}, energies)
    return bound
