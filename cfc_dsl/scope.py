"""Names in scope (Kind, Symbol) and expression typing (Type) for the check stage.

`ExprTyper` types one expression against the checker's tables of declared names and
energies (shared, so it sees each declaration as soon as the checker records it) and
raises a `CfcError` pointing at the first ill-typed piece.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import NoReturn

from cfc_dsl import syntax as ast
from cfc_dsl.arguments import bind_call
from cfc_dsl.builtins import CALLABLE
from cfc_dsl.diagnostics import CfcError, ErrorKind, Span, did_you_mean, plural
from cfc_dsl.model import DType, EnergySpec


class Kind(Enum):
    SIZE = "size"
    PARAM = "parameter"
    DATA = "data array"
    VAR = "variable"
    LOOP = "loop index"
    SLOT = "energy slot"
    EPARAM = "energy parameter"


class Type(Enum):
    INT = "integer"
    REAL = "real"
    BOOL = "boolean"
    VAR = "variable-dependent"


@dataclass(frozen=True)
class Symbol:
    kind: Kind
    rank: int
    dtype: DType
    span: Span = field(compare=False)


def semantic_error(message: str, span: Span, hint: str) -> CfcError:
    return CfcError(ErrorKind.SEMANTIC, message, span, hint)


_err = semantic_error


class ExprTyper:
    """Types expressions over `scope` (model names), `energies`, and per-call locals."""

    def __init__(self, scope: dict[str, Symbol], energies: dict[str, EnergySpec],
                 later: dict[str, Span]):
        self.scope = scope
        self.energies = energies
        self.later = later

    def before_use(self, name: str, span: Span) -> NoReturn:
        raise _err(f"'{name}' is used before it is declared", span,
                   f"move its declaration (line {self.later[name].line}) above this line")

    def lookup(self, name: str, span: Span, local: dict[str, Symbol]) -> Symbol:
        if name in local:
            return local[name]
        if name in self.scope:
            return self.scope[name]
        if name in CALLABLE or name in self.energies:
            raise _err(f"'{name}' is a function and must be called", span,
                       f"write {name}(...)")
        if name in self.later:
            self.before_use(name, span)
        raise _err(f"unknown name '{name}'", span, did_you_mean(name, set(self.scope) | set(local)))

    def type_of(self, expr: ast.Expr, local: dict[str, Symbol], energy_body: bool = False) -> Type:
        if isinstance(expr, ast.Number):
            return Type.INT if expr.is_integer else Type.REAL
        if isinstance(expr, ast.Name):
            sym = self.lookup(expr.name, expr.span, local)
            if energy_body and sym.kind not in (Kind.SLOT, Kind.EPARAM):
                raise _err(f"energy bodies cannot use the {sym.kind.value} '{expr.name}'",
                           expr.span, "pass it in as an energy parameter after ';' instead")
            if sym.rank:
                raise _err(f"'{expr.name}' is an array with {plural(sym.rank, 'dimension')} and "
                           "needs an index here", expr.span,
                           f"name one element, e.g. {expr.name}[{', '.join('ijk'[:sym.rank])}]")
            return symbol_type(sym)
        if isinstance(expr, ast.Index):
            return self._index(expr, local, energy_body)
        if isinstance(expr, ast.Unary):
            t = self.type_of(expr.operand, local, energy_body)
            if expr.op == "not":
                if t is not Type.BOOL:
                    raise _err("'not' needs a condition", expr.operand.span,
                               "write e.g. 'not i == 0'")
                return Type.BOOL
            _numeric(t, expr.operand, "-")
            return t
        if isinstance(expr, ast.Binary):
            return self._binary(expr, local, energy_body)
        assert isinstance(expr, ast.Call)
        return self._call(expr, local, energy_body)

    def _index(self, expr: ast.Index, local: dict[str, Symbol], energy_body: bool) -> Type:
        sym = self.lookup(expr.name, expr.name_span, local)
        if energy_body:
            raise _err("energy bodies cannot index arrays", expr.span,
                       "index in the factor declaration and pass the element as an argument")
        if sym.rank == 0:
            raise _err(f"'{expr.name}' is a scalar {sym.kind.value} and cannot be indexed",
                       expr.span, f"write '{expr.name}' without brackets")
        if len(expr.indices) != sym.rank:
            raise _err(f"'{expr.name}' has {plural(sym.rank, 'dimension')} but "
                       f"{plural(len(expr.indices), 'index', 'indices')} "
                       f"{'is' if len(expr.indices) == 1 else 'are'} given", expr.span,
                       f"give one index per dimension, e.g. "
                       f"{expr.name}[{', '.join('ijk'[:sym.rank])}]")
        for index in expr.indices:
            t = self.type_of(index, local)
            if t is not Type.INT:
                raise _err(f"index of '{expr.name}' is not an integer", index.span,
                           "indices are integer expressions; use '//' for integer division"
                           if t is Type.REAL else
                           "indices are integer expressions over loop indices, sizes and "
                           "integer data")
        return symbol_type(sym)

    def _binary(self, expr: ast.Binary, local: dict[str, Symbol], energy_body: bool) -> Type:
        lt = self.type_of(expr.left, local, energy_body)
        rt = self.type_of(expr.right, local, energy_body)
        op = expr.op
        if op in ("and", "or"):
            for t, side in ((lt, expr.left), (rt, expr.right)):
                if t is not Type.BOOL:
                    raise _err(f"'{op}' joins conditions", side.span,
                               "write comparisons on both sides, e.g. 'i > 0 and i < N'")
            return Type.BOOL
        _numeric(lt, expr.left, op)
        _numeric(rt, expr.right, op)
        if op in ("<", "<=", ">", ">=", "==", "!="):
            if Type.VAR in (lt, rt):
                raise _err("conditions cannot depend on variables", expr.span,
                           "use relu, min or max for a soft condition inside an energy")
            return Type.BOOL
        if Type.VAR in (lt, rt):
            if op in ("//", "%"):
                raise _err(f"'{op}' is integer arithmetic and cannot take a variable", expr.span,
                           "use '/' for real division")
            return Type.VAR
        if op in ("//", "%"):
            if lt is not Type.INT or rt is not Type.INT:
                raise _err(f"'{op}' needs integer operands", expr.span,
                           "'//' and '%' are for index arithmetic; use '/' for real division")
            return Type.INT
        if op == "/":
            return Type.REAL
        return Type.INT if lt is Type.INT and rt is Type.INT else Type.REAL

    def _call(self, expr: ast.Call, local: dict[str, Symbol], energy_body: bool) -> Type:
        if expr.name in CALLABLE:
            return self._builtin(expr, local, energy_body)
        energy = self.energies.get(expr.name)
        if energy is None:
            if expr.name in self.later:
                self.before_use(expr.name, expr.name_span)
            raise _err(f"unknown function '{expr.name}'", expr.name_span,
                       did_you_mean(expr.name, set(CALLABLE) | set(self.energies)))
        if not energy_body:
            raise _err(f"energy '{expr.name}' can only be used in a factor or an energy body",
                       expr.name_span, "declare it with 'factor NAME[...] = "
                       f"{expr.name}(...)'")
        slot_exprs, param_exprs = bind_call(energy, expr)
        for e in slot_exprs + param_exprs:
            _numeric(self.type_of(e, local, True), e, expr.name)
        return Type.VAR

    def _builtin(self, expr: ast.Call, local: dict[str, Symbol], energy_body: bool) -> Type:
        row = CALLABLE[expr.name]
        lo, hi = row.arity
        if expr.has_separator:
            raise _err(f"built-in '{expr.name}' takes no ';'", expr.span,
                       f"write {expr.name}(value)")
        args = expr.slot_args
        if not lo <= len(args) <= hi:
            count = f"{lo}" if lo == hi else f"{lo} or {hi}"
            raise _err(f"'{expr.name}' takes {count} argument{'' if hi == 1 else 's'} but "
                       f"{len(args)} {'is' if len(args) == 1 else 'are'} given", expr.span,
                       f"for example {expr.name}({', '.join('xy'[:lo])})")
        types = []
        for arg in args:
            if arg.keyword is not None and arg.keyword not in row.keywords:
                raise _err(f"'{expr.name}' takes no keyword '{arg.keyword}'", arg.span,
                           "pass built-in arguments by position"
                           + "".join(f"; {expr.name} takes {k} = ..." for k in row.keywords))
            t = self.type_of(arg.value, local, energy_body)
            _numeric(t, arg.value, expr.name)
            types.append(t)
        if Type.VAR in types:
            return Type.VAR
        if row.integer and all(t is Type.INT for t in types):
            return Type.INT
        return Type.REAL


def _numeric(t: Type, expr: ast.Expr, op: str) -> None:
    if t is Type.BOOL:
        raise _err(f"'{op}' needs a number, not a condition", expr.span,
                   "arithmetic works on numbers; conditions go in range filters")


def symbol_type(sym: Symbol) -> Type:
    if sym.kind in (Kind.VAR, Kind.SLOT):
        return Type.VAR
    if sym.kind in (Kind.SIZE, Kind.LOOP):
        return Type.INT
    if sym.kind is Kind.DATA:
        return Type.INT if sym.dtype is DType.INT else Type.REAL
    return Type.REAL
