"""Curvature bounds: a rigorous bound on every Hessian entry |d2E/dx_i dx_j| of one energy.

Per energy, after derive: each bound is a SymPy expression in the parameters and the box
symbols lo_<slot>, hi_<slot>, from interval arithmetic over the Hessian's expression tree (for
polynomial entries, an exact max at evaluation time). Solvers turn it into a safe step size.
The value (`HessianBound`) and its numeric evaluation (`evaluate_bound`) live in
cfc_dsl/lipschitz_numeric.py.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any, NamedTuple

import sympy as sp
from sympy.printing.str import StrPrinter

from cfc_dsl.builtins import Interval, Range
from cfc_dsl.derive import DerivedEnergy
from cfc_dsl.functions import FUNCTION_CLASSES, AbsVal, Relu, Step
from cfc_dsl.lipschitz_numeric import HessianBound, evaluate_bound, poly_plan, univariate_max_abs
from cfc_dsl.minmax import max_, min_


class _Rule(NamedTuple):
    interval: Interval
    range: Range
    jumps: bool


# Each built-in's rule comes from its row of the table; SymPy's own functions below can
# appear in a derivative after simplification, so they need a rule too.
_RULES: dict[Any, _Rule] = {cls: _Rule(b.interval, b.range, b.jumps)
                             for cls, b in FUNCTION_CLASSES.items()}
_RULES |= {sp.atan: _Rule(Interval.INCREASING, Range.REAL, False),
           sp.sign: _Rule(Interval.INCREASING, Range.REAL, True),
           sp.Heaviside: _Rule(Interval.INCREASING, Range.NONNEG, True),
           sp.Abs: _Rule(Interval.ABS, Range.NONNEG, False)}
_JUMPS = tuple(f for f, r in _RULES.items() if r.jumps)  # they jump where their argument is 0
_POSITIVE = tuple(f for f, r in _RULES.items() if r.range is Range.POSITIVE)
_NONNEG = _POSITIVE + tuple(f for f, r in _RULES.items() if r.range is Range.NONNEG)
_DSL_NAMES = {cls.__name__: b.name for cls, b in FUNCTION_CLASSES.items()} | {"Abs": "abs"}


class _Iv(NamedTuple):
    """An enclosure [lo, hi], valid where `cond` holds (elsewhere undefined or unbounded)."""

    lo: sp.Expr
    hi: sp.Expr
    nonneg: bool = False
    cond: sp.Basic = sp.true


MAX_HESSIAN_OPS = 40  # the stdlib's largest Hessian entry has 16 operations
MAX_INTERVAL_STEPS = 20_000  # enclosure steps per energy; the stdlib needs under 200
MAX_SECONDS = 20.0  # a backstop for SymPy calls the step count does not see
# (`hessian` of a failed bound is +oo too: never a polynomial plan, so never evaluated)


class _OverBudget(Exception):
    pass


class _Budget(threading.local):
    steps = 0
    deadline = float("inf")

    def spend(self) -> None:
        self.steps += 1
        if self.steps > MAX_INTERVAL_STEPS:
            raise _OverBudget(f"bounding it takes more than {MAX_INTERVAL_STEPS} interval steps")
        if time.monotonic() > self.deadline:
            raise _OverBudget(f"bounding it takes longer than {MAX_SECONDS:g} s")


_BUDGET = _Budget()


def hessian_bound(energy: DerivedEnergy) -> HessianBound:
    """Bound every Hessian entry of `energy` over a symbolic box, symbolically in its params.

    Within a budget of steps and time; past it, or where SymPy cannot order two constants
    (Max(1 - Sigmoid(1), ...)), the energy has no certified bound and says why."""
    _BUDGET.steps, _BUDGET.deadline = 0, time.monotonic() + MAX_SECONDS
    try:
        return _hessian_bound(energy)
    except _OverBudget as exc:
        why = str(exc)
    except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
        why = f"SymPy cannot bound its Hessian ({type(exc).__name__}: {str(exc)[:80]})"
    finally:
        _BUDGET.deadline = float("inf")
    slots = energy.slots
    unbounded = tuple(tuple(sp.oo for _ in slots) for _ in slots)
    return HessianBound(energy.name, tuple(s.name for s in slots),
                        tuple(p.name for p in energy.params), False,
                        f"{why}: no certified step; pgd is unaffected", unbounded,
                        tuple(sp.Symbol(f"lo_{s.name}", real=True) for s in slots),
                        tuple(sp.Symbol(f"hi_{s.name}", real=True) for s in slots),
                        tuple(tuple("interval" for _ in slots) for _ in slots), unbounded)


def _hessian_bound(energy: DerivedEnergy) -> HessianBound:
    slots, k, slotset = energy.slots, len(energy.slots), set(energy.slots)
    lower = tuple(sp.Symbol(f"lo_{s.name}", real=True) for s in slots)
    upper = tuple(sp.Symbol(f"hi_{s.name}", real=True) for s in slots)
    box = {s: _Iv(lo, hi) for s, lo, hi in zip(slots, lower, upper, strict=True)}
    hess = tuple(tuple(sp.diff(g, s).replace(sp.DiracDelta, lambda *a: sp.S.Zero) for s in slots)
                 for g in energy.grad)
    jumps = [_jumps(g, slotset) for g in energy.grad]
    entries = [[sp.S.Zero] * k for _ in range(k)]
    method = [["interval"] * k for _ in range(k)]
    size = max((sp.count_ops(h) for row in hess for h in row), default=0)
    if size > MAX_HESSIAN_OPS:
        # Interval enclosures of products grow exponentially with nesting (tanh(tanh(x*y))
        # already gives 10^4-operation bounds); past this size, no finite bound is claimed.
        too_big = tuple(tuple(sp.S.Zero if h == 0 else sp.oo for h in row) for row in hess)
        reason = (f"its Hessian is too large to bound symbolically ({size} operations, limit "
                  f"{MAX_HESSIAN_OPS}): no certified step; pgd is unaffected")
        return HessianBound(energy.name, tuple(s.name for s in slots),
                            tuple(p.name for p in energy.params), False, reason, too_big,
                            lower, upper, tuple(map(tuple, method)), hess)
    for i, j in itertools.combinations_with_replacement(range(k), 2):
        bound = _entry_bound(hess[i][j], box, slotset)
        crossing = [_jump_here(node, cofactors, box, slotset)
                    for a, b in ((i, j), (j, i)) for node, cofactors in jumps[a]
                    if slots[b] in node.args[0].free_symbols]
        if crossing:
            bound = sp.Piecewise((sp.oo, sp.Or(*crossing)), (bound, True))
        elif poly_plan(hess[i][j], slots) is not None:
            method[i][j] = method[j][i] = "polynomial"
        entries[i][j] = entries[j][i] = bound
    reason = _jump_reason(energy, jumps) or _singular_reason(energy)
    return HessianBound(energy.name, tuple(s.name for s in slots),
                        tuple(p.name for p in energy.params), not reason, reason,
                        tuple(map(tuple, entries)), lower, upper, tuple(map(tuple, method)), hess)


def _entry_bound(h: sp.Expr, box: dict[sp.Symbol, _Iv], slots: set[sp.Symbol]) -> sp.Expr:
    """max(-lo, hi) of the enclosure, +oo where it is not valid; the min over two forms."""
    if h == 0:
        return sp.S.Zero
    forms = [h]
    if any(p.base.free_symbols & slots and not _nonneg_int(p.exp) for p in h.atoms(sp.Pow)):
        # g**p/g**2 -> p*(1 - p)*g**(p - 2): exposes a zero factor that cancels a singularity
        forms.append(sp.factor_terms(sp.powsimp(sp.expand(h))))
    bounds = []
    for iv in (_interval(form, box, slots) for form in dict.fromkeys(forms)):
        b = max_(-iv.lo, iv.hi)
        bounds.append(b if iv.cond == sp.true else sp.Piecewise((b, iv.cond), (sp.oo, True)))
    return min_(*bounds)


def _nonneg_int(e: sp.Expr) -> bool:
    return bool(e.is_Number and e >= 0 and e == int(e))


def _interval(e: sp.Expr, box: dict[sp.Symbol, _Iv], slots: set[sp.Symbol]) -> _Iv:
    """Enclose `e` over the box; parameters are points, so slot-free parts are exact."""
    _BUDGET.spend()
    if not e.free_symbols & slots:
        return _Iv(e, e, bool(e.is_nonnegative))
    if e.is_Symbol:
        return box[e]
    if e.is_Add:
        ivs = [_interval(a, box, slots) for a in e.args]
        return _Iv(sp.Add(*(v.lo for v in ivs)), sp.Add(*(v.hi for v in ivs)),
                   all(v.nonneg for v in ivs), sp.And(*(v.cond for v in ivs)))
    if e.is_Mul:
        coeff, rest = e.as_independent(*slots, as_Add=False)
        ivs = [_interval(a, box, slots) for a in sp.Mul.make_args(rest)]
        return _scale(coeff, ivs[0] if len(ivs) == 1 else _mul(ivs))
    if e.is_Pow:
        return _pow(e.base, e.exp, box, slots)
    if len(e.args) != 1:
        return _Iv(-sp.oo, sp.oo, False, sp.false)
    f, a = type(e), _interval(e.args[0], box, slots)
    rule = _RULES.get(f)
    kind = rule.interval if rule else None
    if kind is Interval.INCREASING:
        return _Iv(f(a.lo), f(a.hi), f in _NONNEG, a.cond)
    if kind is Interval.LOG:
        return _Iv(f(a.lo), f(a.hi), False, a.cond & (a.lo > 0))
    if kind is Interval.ABS:
        return _Iv(max_(0, a.lo, -a.hi), max_(-a.lo, a.hi), True, a.cond)
    if kind is Interval.UNIT:
        return _Iv(sp.S.NegativeOne, sp.S.One, False, a.cond)
    return _Iv(-sp.oo, sp.oo, False, sp.false)       # no rule: unbounded, hence sound


def _scale(c: sp.Expr, iv: _Iv) -> _Iv:
    """c * iv for a point c. A factor exactly 0 zeroes the term even where iv is undefined."""
    if c == 1:
        return iv
    if c.is_nonnegative or c.is_nonpositive:
        lo, hi = (c * iv.hi, c * iv.lo) if c.is_nonpositive else (c * iv.lo, c * iv.hi)
    else:
        lo, hi = min_(c * iv.lo, c * iv.hi), max_(c * iv.lo, c * iv.hi)
    nonneg = iv.nonneg and bool(c.is_nonnegative)
    if iv.cond == sp.true:
        return _Iv(lo, hi, nonneg)
    zero = sp.Eq(c, 0)
    return _Iv(sp.Piecewise((0, zero), (lo, True)), sp.Piecewise((0, zero), (hi, True)),
               nonneg, zero | iv.cond)


def _mul(ivs: list[_Iv]) -> _Iv:
    a = ivs[0]
    for b in ivs[1:]:
        cond = a.cond & b.cond
        if b.nonneg and not a.nonneg:
            a, b = b, a
        if a.nonneg and b.nonneg:
            a = _Iv(a.lo * b.lo, a.hi * b.hi, True, cond)
        elif a.nonneg:
            a = _Iv(min_(a.lo * b.lo, a.hi * b.lo), max_(a.lo * b.hi, a.hi * b.hi), False,
                    cond)
        else:
            ends = [x * y for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
            a = _Iv(min_(*ends), max_(*ends), False, cond)
    return a


def _pow(base: sp.Expr, n: sp.Expr, box: dict[sp.Symbol, _Iv], slots: set[sp.Symbol]) -> _Iv:
    if n.free_symbols & slots:
        return _interval(sp.exp(n * sp.log(base)), box, slots)
    b = _interval(base, box, slots)
    if n.is_Number and n == int(n):
        m = int(n)
        if m < 0:                    # 1 / base^|m|: bounded only if 0 is outside the box
            j = _pow(base, sp.Integer(-m), box, slots)
            ok = (j.lo > 0) if j.nonneg else (j.lo > 0) | (j.hi < 0)
            return _Iv(1 / j.hi, 1 / j.lo, j.nonneg, j.cond & ok)
        if m % 2 == 1 or b.nonneg:
            return _Iv(b.lo**m, b.hi**m, b.nonneg, b.cond)
        return _Iv(max_(0, b.lo, -b.hi)**m, max_(-b.lo, b.hi)**m, True, b.cond)
    if n.is_Number:                  # fractional: needs base >= 0, and base > 0 if n < 0
        if n > 0:
            return _Iv(b.lo**n, b.hi**n, True, b.cond & (b.lo >= 0))
        return _Iv(b.hi**n, b.lo**n, True, b.cond & (b.lo > 0))
    # a parameter exponent: monotone for base > 0; at base = 0 finite only for n >= 0 (0^0 = 1)
    ends = (b.lo**n, b.hi**n)
    ok = (b.lo > 0) | ((b.lo >= 0) & (n >= 0))
    return _Iv(min_(*ends), max_(*ends), True, b.cond & ok)


def _jumps(grad: sp.Expr, slots: set[sp.Symbol]) -> list[tuple[sp.Expr, list[sp.Expr]]]:
    """Step/Sign nodes of one gradient component that make it jump, with their cofactors.

    A jump at u = 0 is harmless when a continuous factor of an enclosing product vanishes on
    u = 0 (relu(u), abs(u), u, or anything that substitutes to 0 there): the product is then
    continuous and piecewise smooth, so the gradient stays Lipschitz (e.g. relu(u)^2).
    """
    found: list[tuple[sp.Expr, list[sp.Expr]]] = []

    def walk(e: sp.Expr, cofactors: list[sp.Expr]) -> None:
        if isinstance(e, _JUMPS):
            u = e.args[0]
            smooth = [f for f in cofactors
                      if not any(j.args[0].free_symbols & slots for j in f.atoms(*_JUMPS))]
            if u.free_symbols & slots and not any(_vanishes(f, u, slots) for f in smooth):
                found.append((e, cofactors))
            return
        for a in e.args:
            walk(a, cofactors + [f for f in e.args if f is not a] if e.is_Mul else cofactors)

    walk(grad, [])
    return found


def _vanishes(f: sp.Expr, u: sp.Expr, slots: set[sp.Symbol]) -> bool:
    """Whether f -> 0 on the kink set u = 0 (a sufficient test: False when unsure)."""
    if f.is_Pow and f.exp.is_positive:
        return _vanishes(f.base, u, slots)
    if isinstance(f, (Relu, AbsVal, sp.Abs)):
        f = f.args[0]
    if sp.expand(f - u) == 0 or sp.expand(f + u) == 0:
        return True
    for s in sorted(u.free_symbols & slots, key=str):
        c = sp.diff(u, s)
        if c.is_Number and c != 0:          # u is linear in s: put s on the kink, is f 0?
            return sp.expand(f.subs(s, s - u / c)) == 0
    return False


def _jump_here(node: sp.Expr, cofactors: list[sp.Expr], box: dict[sp.Symbol, _Iv],
               slots: set[sp.Symbol]) -> sp.Basic:
    """When the jump of `node` may lie in the box with no cofactor identically 0 there."""
    u = _interval(node.args[0], box, slots)
    cross = (u.lo <= 0) & ((u.hi > 0) if isinstance(node, Step) else (u.hi >= 0))
    alive = [(v.lo < 0) | (v.hi > 0) | ~v.cond for v in
             (_interval(f, box, slots) for f in cofactors)]
    return (cross | ~u.cond) & sp.And(*alive)


def _jump_reason(energy: DerivedEnergy, jumps: list[list[tuple[sp.Expr, list[sp.Expr]]]]) -> str:
    nodes = [node for js in jumps for node, _ in js]
    for node in sorted(nodes, key=lambda n: not isinstance(n, Step)):  # relu's kink reads best
        kinds = (Relu,) if isinstance(node, Step) else (AbsVal, sp.Abs)
        src = next((f for f in sp.preorder_traversal(energy.expr)
                    if isinstance(f, kinds) and f.args[0] == node.args[0]), node)
        where = _equation(node.args[0], energy)
        return f"{_dsl(src, energy)} has a kink where {where}: the gradient jumps"
    return ""


def _singular_reason(energy: DerivedEnergy) -> str:
    """Static check: log, fractional or negative powers of a slot expression that may be 0."""
    slots = set(energy.slots)
    for e in sp.preorder_traversal(energy.expr):
        if not (isinstance(e, (sp.log, sp.Pow)) and e.args[0].free_symbols & slots):
            continue
        name, where, n = _dsl(e, energy), _equation(e.args[0], energy), e.args[-1]
        if _positive(e.args[0]) or (e.is_Pow and n.is_Number and (_nonneg_int(n) or n > 2)):
            continue
        if e.is_Pow and n.free_symbols - slots and not n.free_symbols & slots:
            p = _dsl(n, energy)
            return (f"{name} with parameter exponent {p}: the curvature is unbounded near "
                    f"{where} unless {p} is 0, 1 or >= 2")
        return f"{name} has unbounded curvature near {where}"
    return ""


def _positive(e: sp.Expr, strict: bool = True) -> bool:
    """A sufficient test that e > 0 (strict) or e >= 0 for every real value of the slots."""
    if (e.is_positive if strict else e.is_nonnegative) or isinstance(
            e, _POSITIVE if strict else _NONNEG):
        return True
    if e.is_Pow:
        return _positive(e.base, strict) or (not strict and bool(e.exp.is_even))
    if e.is_Add:
        return all(_positive(a, False) for a in e.args) and (
            not strict or any(_positive(a) for a in e.args))
    return bool(e.is_Mul and all(_positive(a, strict) for a in e.args))


class _DslPrinter(StrPrinter):
    """SymPy in the .cfc spelling (relu, abs, ^), the slot terms of a sum first."""

    def __init__(self, slots: set[sp.Symbol]) -> None:
        super().__init__()
        self.slots = slots

    def _print_Function(self, e: sp.Function) -> str:
        name = _DSL_NAMES.get(type(e).__name__)
        if name is None:
            return super()._print_Function(e)
        return f"{name}({', '.join(map(self._print, e.args))})"

    def _as_ordered_terms(self, expr: sp.Expr, order: object = None) -> list[sp.Expr]:
        terms = super()._as_ordered_terms(expr, order=order)
        return sorted(terms, key=lambda t: not t.free_symbols & self.slots)


def _dsl(e: sp.Expr, energy: DerivedEnergy) -> str:
    return _DslPrinter(set(energy.slots)).doprint(e).replace("**", "^")


def _equation(u: sp.Expr, energy: DerivedEnergy) -> str:
    """u = 0 written as 'lhs = rhs', with the slot terms that carry a plus sign on the left."""
    slots = set(energy.slots)
    terms = list(sp.Add.make_args(u))
    if not any(t.free_symbols & slots and not t.could_extract_minus_sign() for t in terms):
        terms = [-t for t in terms]
    lhs = [t for t in terms if t.free_symbols & slots and not t.could_extract_minus_sign()]
    rhs = [-t for t in terms if t not in lhs]
    return f"{_dsl(sp.Add(*lhs), energy)} = {_dsl(sp.Add(*rhs), energy)}"


def bound_formula(bound: HessianBound) -> list[str]:
    """One readable line per entry, row-major: '|d2E/dx dy| <= formula  [method]'."""
    return [f"|d2E/d{a} d{b}| <= {sp.sstr(bound.entries[i][j])}  [{bound.method[i][j]}]"
            for i, a in enumerate(bound.slots) for j, b in enumerate(bound.slots)]


__all__ = ["HessianBound", "univariate_max_abs", "bound_formula", "evaluate_bound",
           "hessian_bound"]
