"""Derive stage: an energy -> its SymPy expression and exact gradient (per energy).

Derivation is per energy, never per instance: the graph is runtime data. Calls to other
energies are inlined; built-ins come from their rows of the table (`functions.sympy_call`).
The result is plain frozen data the lowering stage (codegen/) turns into CSE'd kernel IR.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import sympy as sp

from cfc_dsl import syntax as ast
from cfc_dsl.arguments import match_arguments
from cfc_dsl.builtins import CALLABLE
from cfc_dsl.derive_guards import InlineBudget, constant_problem, domain_error, literal_error
from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.functions import sympy_call
from cfc_dsl.jobs import EnergyJob, energy_jobs
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
    expr = to_sympy(energy.body, env, energies, InlineBudget(energy.name))
    if constant_problem(expr):  # translate again, checking each node, to blame the culprit
        to_sympy(energy.body, env, energies, InlineBudget(energy.name), strict=True)
    # powsimp folds SymPy's p*g**p/g into p*g**(p - 1), which is finite at g = 0
    grad = tuple(sp.powsimp(sp.diff(expr, s)) for s in slots)
    for s, g in zip(energy.slots, grad, strict=True):
        if why := constant_problem(g):
            raise CfcError(ErrorKind.SEMANTIC, f"the derivative of '{energy.name}' by '{s}' "
                           f"{why}", energy.body.span,
                           "rewrite the body so that its derivative is finite for every input")
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


def derive_job(job: EnergyJob) -> DerivedEnergy:
    """One job, derived once per process."""
    energy, callees = job
    try:
        return _derive_memo(energy, callees)
    except RecursionError:  # hashing a very deep body: derive it without the memo
        return derive_energy(energy, {c.name: c for c in callees})


def derive_model(model: Model) -> tuple[DerivedEnergy, ...]:
    """Each used energy, derived once per process: a compile asks twice (render and the
    bounds summary), and an energy is its spec plus the specs it calls (spans aside)."""
    order = {e.name: k for k, e in enumerate(model.used_energies)}
    jobs = sorted(energy_jobs(model), key=lambda job: order[job[0].name])
    return tuple(derive_job(job) for job in jobs)


@functools.lru_cache(maxsize=4096)
def _derive_memo(energy: EnergySpec, callees: tuple[EnergySpec, ...]) -> DerivedEnergy:
    return derive_energy(energy, {c.name: c for c in callees})


def to_sympy(expr: ast.Expr, env: dict[str, sp.Expr], energies: dict[str, EnergySpec],
             budget: InlineBudget | None = None, strict: bool = False) -> sp.Expr:
    """Translate a checked expression; `env` maps slot and parameter names to SymPy terms.

    `budget` bounds the work of inlining; `strict` raises at the first node whose value
    cannot be double arithmetic (zoo, nan, I, a constant past DBL_MAX)."""
    budget = budget or InlineBudget("")
    budget.spend(expr)
    try:
        out = _translate(expr, env, energies, budget, strict)
    except (TypeError, ValueError, ArithmeticError, MemoryError) as exc:  # min(x, 0/0)
        if not strict:  # blame the argument that made it (0/0), if one did
            to_sympy(expr, env, energies, InlineBudget(budget.energy), strict=True)
        raise domain_error(expr, f"cannot be evaluated ({exc})") from None
    if strict and (why := constant_problem(out)):
        raise domain_error(expr, why)
    return out


def _translate(expr: ast.Expr, env: dict[str, sp.Expr], energies: dict[str, EnergySpec],
               budget: InlineBudget, strict: bool) -> sp.Expr:
    def sub(e: ast.Expr, names: dict[str, sp.Expr] = env) -> sp.Expr:
        return to_sympy(e, names, energies, budget, strict)

    if isinstance(expr, ast.Number):
        if not math.isfinite(expr.value):
            raise literal_error(expr)
        return sp.Integer(int(expr.value)) if expr.is_integer else sp.Float(expr.value, 17)
    if isinstance(expr, ast.Name):
        return env[expr.name]
    if isinstance(expr, ast.Unary):
        return -sub(expr.operand)
    if isinstance(expr, ast.Binary) and expr.op in "+-" and not strict:
        return _sum(expr, sub, budget)
    if isinstance(expr, ast.Binary):
        a, b = sub(expr.left), sub(expr.right)
        if expr.op == "^":
            return _power(a, b)
        ops = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b}
        return ops[expr.op]()
    if isinstance(expr, ast.Call):
        if expr.name in CALLABLE:
            return sympy_call(expr.name, [sub(a.value) for a in expr.slot_args])
        callee = energies[expr.name]
        bound = {name: sub(arg) for name, arg in match_arguments(callee, expr).items()}
        for p in callee.params:
            if p.name not in bound:
                assert p.default is not None
                bound[p.name] = sub(p.default, {})
        budget.chain.append((callee.name, expr.span))
        try:
            return sub(callee.body, bound)
        finally:
            budget.chain.pop()
    raise TypeError(f"cannot translate {type(expr).__name__} in an energy body")


def _sum(expr: ast.Binary, sub: Callable[[ast.Expr], sp.Expr], budget: InlineBudget) -> sp.Expr:
    """A chain of '+' and '-' as one sp.Add, its terms translated left to right: adding term
    by term flattens the growing sum again each time, quadratic in the number of terms.
    (The strict pass, which blames one node, still goes node by node.)"""
    spine: list[ast.Binary] = []
    node: ast.Expr = expr
    while isinstance(node, ast.Binary) and node.op in "+-":
        spine.append(node)
        node = node.left
    for inner in spine[1:]:  # to_sympy spent the outermost node already
        budget.spend(inner)
    terms = [sub(node)]
    for inner in reversed(spine):
        term = sub(inner.right)
        terms.append(-term if inner.op == "-" else term)
    return sp.Add(*terms)


def _power(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """a ** b; a constant power with a huge exponent goes through floats (2^(2^64) would
    otherwise be computed digit by digit)."""
    if a.is_Number and b.is_Number and abs(b) > 1024 and abs(a) not in (0, 1):
        try:
            return sp.Float(math.pow(float(a), float(b)), 17)
        except (OverflowError, ValueError):  # past DBL_MAX, or a negative base: refused later
            return sp.oo
    return a ** b
