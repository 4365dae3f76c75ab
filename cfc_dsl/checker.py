"""Check stage: syntax tree -> typed `Model`, or a `CfcError` that points at the source.

One pass in declaration order (names are declared before use). Every expression is typed
in the context it appears in: integer (sizes, ranges, indices), real (parameters, initial
values, weights), boolean (range filters) or energy body (slots and energy parameters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from importlib import resources
from pathlib import Path

from cfc_dsl import syntax as ast
from cfc_dsl.diagnostics import CfcError, ErrorKind, Source, Span, did_you_mean, plural
from cfc_dsl.model import (
    BUILTIN_FUNCTIONS,
    DataSpec,
    DType,
    EnergySpec,
    FactorFamily,
    InitRule,
    Model,
    ParamSpec,
    SizeSpec,
    VariableSpec,
)
from cfc_dsl.parser import parse


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


def _err(message: str, span: Span, hint: str) -> CfcError:
    return CfcError(ErrorKind.SEMANTIC, message, span, hint)


@lru_cache(maxsize=1)
def stdlib_energies() -> tuple[EnergySpec, ...]:
    text = resources.files("cfc_dsl").joinpath("stdlib.cfc").read_text(encoding="utf-8")
    program = parse(text, "<stdlib>")
    out = []
    for decl in program.decls:
        assert isinstance(decl, ast.EnergyDecl)
        out.append(EnergySpec(decl.name, decl.slots, decl.params, decl.body, decl.span, True))
    return tuple(out)


def check(program: ast.Program, source_text: str | None = None) -> Model:
    return _Checker(program).run()


class _Checker:
    def __init__(self, program: ast.Program):
        self.program = program
        self.scope: dict[str, Symbol] = {}
        self.energies: dict[str, EnergySpec] = {e.name: e for e in stdlib_energies()}
        self.sizes: list[SizeSpec] = []
        self.params: list[ParamSpec] = []
        self.data: list[DataSpec] = []
        self.variables: list[VariableSpec] = []
        self.inits: list[InitRule] = []
        self.families: dict[str, FactorFamily] = {}
        self.weights: dict[str, ast.WeightDecl] = {}
        self.model_name: str | None = None
        self.source: Source | None = None
        self.later = self._declared_later()

    def _declared_later(self) -> dict[str, Span]:
        names: dict[str, Span] = {}
        for d in self.program.decls:
            if isinstance(d, ast.SizeDecl | ast.ParamDecl | ast.DataDecl | ast.VarDecl):
                names.setdefault(d.name, d.span)
            if isinstance(d, ast.EnergyDecl):
                names.setdefault(d.name, d.span)
        return names

    # ---------------------------------------------------------------- driver
    def run(self) -> Model:
        for decl in self.program.decls:
            self.source = decl.span.source
            handler = getattr(self, "_" + type(decl).__name__)
            handler(decl)
        families = []
        for name, fam in self.families.items():
            w = self.weights.get(name)
            if w is not None:
                fam = FactorFamily(fam.name, fam.ranges, fam.energy, fam.slot_args, fam.param_args,
                                   w.value, fam.span, fam.name_span, fam.call_span)
            families.append(fam)
        name = self.model_name or Path(self.program.source_name).stem
        source = self.source or Source(self.program.source_name, "")
        return Model(name, source, tuple(self.sizes), tuple(self.params), tuple(self.data),
                     tuple(self.variables), tuple(self.inits), tuple(self.energies.values()),
                     tuple(families))

    # ---------------------------------------------------------------- declarations
    def _ModelDecl(self, d: ast.ModelDecl) -> None:
        if self.model_name is not None:
            raise _err("the model name is given twice", d.span, "keep one 'model NAME' line")
        self.model_name = d.name

    def _declare(self, name: str, symbol: Symbol, span: Span) -> None:
        span = _name_span(span, name)
        if name in BUILTIN_FUNCTIONS:
            raise _err(f"'{name}' is a built-in function and cannot be redefined", span,
                       f"choose another name, for example '{name}_'")
        if name in self.energies:
            raise _err(f"'{name}' is already an energy", span, "choose another name")
        if name in self.scope:
            first = self.scope[name].span
            raise _err(f"'{name}' is already declared as a {self.scope[name].kind.value} "
                       f"on line {first.line}", span, "give each declaration its own name")
        self.scope[name] = symbol

    def _SizeDecl(self, d: ast.SizeDecl) -> None:
        self._expect(d.default, Type.INT, "a size", set())
        self._declare(d.name, Symbol(Kind.SIZE, 0, DType.INT, d.span), d.span)
        self.sizes.append(SizeSpec(d.name, d.default, d.span))

    def _shape(self, shape: tuple[ast.Expr, ...], what: str) -> None:
        for dim in shape:
            self._expect(dim, Type.INT, f"a dimension of {what}", set())

    def _ParamDecl(self, d: ast.ParamDecl) -> None:
        self._shape(d.shape, f"'{d.name}'")
        self._expect(d.default, Type.REAL, f"the default of parameter '{d.name}'", set())
        self._declare(d.name, Symbol(Kind.PARAM, len(d.shape), DType.REAL, d.span), d.span)
        self.params.append(ParamSpec(d.name, d.shape, d.default, d.span))

    def _DataDecl(self, d: ast.DataDecl) -> None:
        if d.dtype is None or d.dtype == "real":
            dtype = DType.REAL
        elif d.dtype == "int":
            dtype = DType.INT
        else:
            raise _err(f"unknown data type '{d.dtype}'", d.dtype_span or d.span,
                       "write ': int' for integer data (indices) or ': real' (the default)")
        for dim in d.shape:
            if isinstance(dim, ast.Name) and dim.name not in self.scope:
                if dim.name in self.later:
                    self._before_use(dim.name, dim.span)
                # an undeclared size in a data shape is bound from the data file
                self._declare(dim.name, Symbol(Kind.SIZE, 0, DType.INT, dim.span), dim.span)
                self.sizes.append(SizeSpec(dim.name, None, dim.span))
            else:
                self._expect(dim, Type.INT, f"a dimension of '{d.name}'", set())
        self._declare(d.name, Symbol(Kind.DATA, len(d.shape), dtype, d.span), d.span)
        self.data.append(DataSpec(d.name, d.shape, dtype, d.span))

    def _VarDecl(self, d: ast.VarDecl) -> None:
        self._shape(d.shape, f"'{d.name}'")
        span = d.span
        lower = d.lower or ast.Number(0.0, True, span)
        upper = d.upper or ast.Number(1.0, True, span)
        for bound in (lower, upper):
            self._expect(bound, Type.REAL, f"a bound of variable '{d.name}'", set())
        if d.initial is not None:
            self._expect(d.initial, Type.REAL, f"the initial value of '{d.name}'", set())
            initial = d.initial
        else:
            initial = ast.Binary("*", ast.Number(0.5, False, span),
                                 ast.Binary("+", lower, upper, span), span)
        self._declare(d.name, Symbol(Kind.VAR, len(d.shape), DType.REAL, d.span), d.span)
        self.variables.append(VariableSpec(d.name, d.shape, lower, upper, initial, d.span))

    def _InitDecl(self, d: ast.InitDecl) -> None:
        sym = self.scope.get(d.name)
        if sym is None or sym.kind is not Kind.VAR:
            names = {n for n, s in self.scope.items() if s.kind is Kind.VAR}
            if sym is None:
                raise _err(f"'init' names '{d.name}', which is not a declared variable",
                           _name_span(d.span, d.name),
                           did_you_mean(d.name, names))
            raise _err(f"'init' sets a variable, but '{d.name}' is a {sym.kind.value}",
                       _name_span(d.span, d.name),
                       f"give '{d.name}' its value where it is declared"
                       + (f" or with --set {d.name}=VALUE" if sym.kind in (Kind.PARAM, Kind.SIZE)
                          else ""))
        loops = self._ranges(d.ranges)
        n_ranges = len(d.ranges.ranges) if d.ranges else 0
        if n_ranges != sym.rank:
            raise _err(f"'init {d.name}' has {plural(n_ranges, 'index range')} but '{d.name}' "
                       f"has {plural(sym.rank, 'dimension')}", d.ranges.span if d.ranges else d.span,
                       f"give one range per dimension, like 'init {d.name}["
                       + ", ".join(f"{v} in 0..{_text(dim)}"
                                   for v, dim in zip("ijklmn", self._var_shape(d.name),
                                                     strict=False))
                       + "] = ...'" if sym.rank else f"write 'init {d.name} = ...' for a scalar variable")
        self._expect(d.value, Type.REAL, f"the initial value of '{d.name}'", loops)
        self.inits.append(InitRule(d.name, d.ranges, d.value, d.span))

    def _EnergyDecl(self, d: ast.EnergyDecl) -> None:
        if d.name in BUILTIN_FUNCTIONS:
            raise _err(f"'{d.name}' is a built-in function and cannot be redefined", d.name_span,
                       f"choose another name, for example '{d.name}_'")
        if d.name in self.energies:
            first = self.energies[d.name]
            where = ("the standard library" if first.builtin else f"line {first.span.line}")
            raise _err(f"energy '{d.name}' is already defined in {where}", d.name_span,
                       f"choose another name, for example 'my_{d.name}'")
        local: dict[str, Symbol] = {}
        for slot in d.slots:
            if slot in local:
                raise _err(f"slot '{slot}' appears twice in energy '{d.name}'", d.span,
                           "give each slot its own name")
            local[slot] = Symbol(Kind.SLOT, 0, DType.REAL, d.span)
        for p in d.params:
            if p.name in local:
                raise _err(f"'{p.name}' appears twice in energy '{d.name}'", p.span,
                           "slots and parameters need distinct names")
            local[p.name] = Symbol(Kind.EPARAM, 0, DType.REAL, p.span)
            if p.default is not None:
                self._expect_constant(p.default, f"the default of '{p.name}'")
        self._type(d.body, local, energy_body=True)
        self.energies[d.name] = EnergySpec(d.name, d.slots, d.params, d.body, d.span)

    def _FactorDecl(self, d: ast.FactorDecl) -> None:
        if d.name in self.families:
            first = self.families[d.name].span
            raise _err(f"factor family '{d.name}' is already declared on line {first.line}",
                       d.name_span, "give each factor family its own name")
        loops = self._ranges(d.ranges)
        call = d.call
        if not isinstance(call, ast.Call):
            raise _err(f"factor '{d.name}' must be a call of an energy", _span(call),
                       "write it as energy(variables; parameters), e.g. landau(eta[i]; a = -0.5)")
        if call.name in BUILTIN_FUNCTIONS:
            raise _err(f"'{call.name}' is a built-in function, not an energy", call.name_span,
                       "define an energy with it first: energy e(x) = ... , then call e(...)")
        energy = self.energies.get(call.name)
        if energy is None:
            if call.name in self.later:
                self._before_use(call.name, call.name_span)
            raise _err(f"unknown energy '{call.name}'", call.name_span,
                       did_you_mean(call.name, set(self.energies)))
        slot_exprs, param_exprs = self._bind_call(energy, call)
        slots: list[ast.Name | ast.Index] = []
        for slot, expr in zip(energy.slots, slot_exprs, strict=True):
            slots.append(self._variable_ref(expr, slot, energy, loops))
        params = []
        for p, expr in zip(energy.params, param_exprs, strict=True):
            self._expect(expr, Type.REAL, f"parameter '{p.name}' of '{energy.name}'", loops,
                         param_of=energy.name)
            params.append(expr)
        one = ast.Number(1.0, True, d.span)
        self.families[d.name] = FactorFamily(d.name, d.ranges, energy.name, tuple(slots),
                                             tuple(params), one, d.span, d.name_span, call.span)

    def _WeightDecl(self, d: ast.WeightDecl) -> None:
        if d.family not in self.families:
            raise _err(f"unknown factor family '{d.family}'", d.name_span,
                       "'weight' scales a factor family declared before it; "
                       + did_you_mean(d.family, set(self.families)))
        if d.family in self.weights:
            raise _err(f"the weight of '{d.family}' is given twice", d.span,
                       f"keep one 'weight {d.family} = ...' line")
        self._expect(d.value, Type.REAL, f"the weight of '{d.family}'", set())
        self.weights[d.family] = d

    # ---------------------------------------------------------------- pieces
    def _var_shape(self, name: str) -> tuple[ast.Expr, ...]:
        return next((v.shape for v in self.variables if v.name == name), ())

    def _before_use(self, name: str, span: Span) -> None:
        raise _err(f"'{name}' is used before it is declared", span,
                   f"move its declaration (line {self.later[name].line}) above this line")

    def _ranges(self, ranges: ast.Ranges | None) -> set[str]:
        loops: set[str] = set()
        if ranges is None:
            return loops
        for r in ranges.ranges:
            for bound in (r.start, r.stop):
                self._expect(bound, Type.INT, "a range bound", loops)
            if r.var in loops:
                raise _err(f"loop index '{r.var}' is used twice in these ranges", r.span,
                           "give each range its own index name, like [i in 0..N, j in 0..N]")
            if r.var in self.scope or r.var in BUILTIN_FUNCTIONS or r.var in self.energies:
                sym = self.scope.get(r.var)
                what = (f"the {sym.kind.value} '{r.var}' declared on line {sym.span.line}" if sym
                        else f"the function '{r.var}'")
                raise _err(f"loop index '{r.var}' hides {what}", r.span,
                           "use a fresh name for the loop index, like i or j")
            loops.add(r.var)
        if ranges.condition is not None:
            t = self._type(ranges.condition, self._locals(loops))
            if t is not Type.BOOL:
                raise _err("a range filter must be a condition", _span(ranges.condition),
                           "compare values, e.g. 'if i % 4 == 0' or 'if i != j'")
        return loops

    def _locals(self, loops: set[str]) -> dict[str, Symbol]:
        span = Span(self.source, 1, 1, 1, 1) if self.source else None  # type: ignore[arg-type]
        return {name: Symbol(Kind.LOOP, 0, DType.INT, span) for name in loops}  # type: ignore[arg-type]

    def _expect(self, expr: ast.Expr, want: Type, what: str, loops: set[str],
                param_of: str | None = None) -> None:
        got = self._type(expr, self._locals(loops))
        if got is Type.VAR:
            hint = ("variables can only fill an energy's slots (before ';'); parameters are "
                    "fixed numbers" if param_of else
                    "only an energy's slots take variables; use numbers, sizes, parameters "
                    "and data here")
            raise _err(f"{what} cannot depend on a variable", _span(expr), hint)
        if got is Type.BOOL:
            raise _err(f"{what} must be a number, not a condition", _span(expr),
                       "conditions belong in a range filter: [i in 0..N if ...]")
        if want is Type.INT and got is not Type.INT:
            raise _err(f"{what} must be an integer", _span(expr),
                       "use integer sizes and literals; '//' is integer division")

    def _expect_constant(self, expr: ast.Expr, what: str) -> None:
        t = self._type(expr, {})
        if t in (Type.VAR, Type.BOOL):
            raise _err(f"{what} must be a constant number", _span(expr),
                       "energy parameter defaults are literal numbers like 0.5")

    def _variable_ref(self, expr: ast.Expr, slot: str, energy: EnergySpec,
                      loops: set[str]) -> ast.Name | ast.Index:
        name = expr.name if isinstance(expr, ast.Name | ast.Index) else None
        sym = self.scope.get(name) if name else None
        if sym is not None and sym.kind is Kind.VAR:
            self._type(expr, self._locals(loops))  # checks rank and index types
            return expr  # type: ignore[return-value]
        t = self._type(expr, self._locals(loops))
        if t is Type.VAR:
            raise _err(f"slot '{slot}' of '{energy.name}' takes one variable element, not an "
                       "expression", _span(expr),
                       "move the expression into an energy body: energy e(x, y) = ...")
        raise _err(f"slot '{slot}' of '{energy.name}' needs a variable, but this is a "
                   f"{'parameter expression' if t is not Type.BOOL else 'condition'}",
                   _span(expr),
                   f"pass a variable like eta[i] here; numbers go after ';' as parameters of "
                   f"{energy.signature()}")

    def _bind_call(self, energy: EnergySpec, call: ast.Call) -> tuple[list[ast.Expr], list[ast.Expr]]:
        """Put the call's arguments in slot order and parameter order, filling defaults."""
        slots: dict[str, ast.Expr] = {}
        params: dict[str, ast.Expr] = {}
        names = energy.slots + energy.param_names
        sig = energy.signature()

        def place(arg: ast.Argument, pool: tuple[str, ...], position: int | None) -> None:
            if arg.keyword is not None:
                if arg.keyword not in names:
                    close = did_you_mean(arg.keyword, set(names))
                    raise _err(f"'{energy.name}' has no argument '{arg.keyword}'", arg.span,
                               f"{close} The signature is {sig}" if close.startswith("did")
                               else f"use the names in its signature {sig}")
                key = arg.keyword
            else:
                assert position is not None
                if position >= len(pool):
                    if not call.has_separator:
                        what = plural(len(pool), "argument")
                    elif pool == energy.slots:
                        what = plural(len(pool), "variable") + " before ';'"
                    else:
                        what = plural(len(pool), "parameter") + " after ';'"
                    raise _err(f"too many arguments: '{energy.name}' takes {what}", arg.span,
                               f"remove this argument; the signature is {sig}")
                key = pool[position]
            if key in slots or key in params:
                raise _err(f"argument '{key}' is given twice", arg.span, f"the signature is {sig}")
            (slots if key in energy.slots else params)[key] = arg.value

        if call.has_separator:
            for i, arg in enumerate(call.slot_args):
                if arg.keyword and arg.keyword in energy.param_names:
                    raise _err(f"'{arg.keyword}' is a parameter of '{energy.name}' but is given "
                               "before ';'", arg.span, f"put parameters after ';': {sig}")
                place(arg, energy.slots, i)
            for i, arg in enumerate(call.param_args):
                if arg.keyword and arg.keyword in energy.slots:
                    raise _err(f"'{arg.keyword}' is a variable slot of '{energy.name}' but is "
                               "given after ';'", arg.span, f"put variables before ';': {sig}")
                place(arg, energy.param_names, i)
        else:
            for i, arg in enumerate(call.slot_args):
                place(arg, names, i)
        for slot in energy.slots:
            if slot not in slots:
                given = len(call.slot_args) if call.has_separator else len(slots)
                raise _err(f"'{energy.name}' takes {plural(len(energy.slots), 'variable')} but "
                           f"{given} {'is' if given == 1 else 'are'} given; '{slot}' is missing",
                           call.span, f"pass a variable for '{slot}' before ';': {sig}")
        for p in energy.params:
            if p.name not in params:
                if p.default is None:
                    raise _err(f"'{energy.name}' needs parameter '{p.name}'", call.span,
                               f"add '{p.name} = ...' after ';' ({sig})")
                params[p.name] = p.default
        return [slots[s] for s in energy.slots], [params[p] for p in energy.param_names]

    # ---------------------------------------------------------------- expression types
    def _lookup(self, name: str, span: Span, local: dict[str, Symbol]) -> Symbol:
        if name in local:
            return local[name]
        if name in self.scope:
            return self.scope[name]
        if name in BUILTIN_FUNCTIONS or name in self.energies:
            raise _err(f"'{name}' is a function and must be called", span,
                       f"write {name}(...)")
        if name in self.later:
            self._before_use(name, span)
        raise _err(f"unknown name '{name}'", span, did_you_mean(name, set(self.scope) | set(local)))

    def _type(self, expr: ast.Expr, local: dict[str, Symbol], energy_body: bool = False) -> Type:
        if isinstance(expr, ast.Number):
            return Type.INT if expr.is_integer else Type.REAL
        if isinstance(expr, ast.Name):
            sym = self._lookup(expr.name, expr.span, local if energy_body else local)
            if energy_body and sym.kind not in (Kind.SLOT, Kind.EPARAM):
                raise _err(f"energy bodies cannot use the {sym.kind.value} '{expr.name}'",
                           expr.span, "pass it in as an energy parameter after ';' instead")
            if sym.rank:
                raise _err(f"'{expr.name}' is an array with {plural(sym.rank, 'dimension')} and "
                           "needs an index here", expr.span,
                           f"name one element, e.g. {expr.name}[{', '.join('ijk'[:sym.rank])}]")
            return _symbol_type(sym)
        if isinstance(expr, ast.Index):
            sym = self._lookup(expr.name, expr.name_span, local)
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
                t = self._type(index, local)
                if t is not Type.INT:
                    raise _err(f"index of '{expr.name}' is not an integer", _span(index),
                               "indices are integer expressions; use '//' for integer division"
                               if t is Type.REAL else
                               "indices are integer expressions over loop indices, sizes and "
                               "integer data")
            return _symbol_type(sym)
        if isinstance(expr, ast.Unary):
            t = self._type(expr.operand, local, energy_body)
            if expr.op == "not":
                if t is not Type.BOOL:
                    raise _err("'not' needs a condition", _span(expr.operand),
                               "write e.g. 'not i == 0'")
                return Type.BOOL
            self._numeric(t, expr.operand, "-")
            return t
        if isinstance(expr, ast.Binary):
            return self._binary(expr, local, energy_body)
        assert isinstance(expr, ast.Call)
        return self._call(expr, local, energy_body)

    def _numeric(self, t: Type, expr: ast.Expr, op: str) -> None:
        if t is Type.BOOL:
            raise _err(f"'{op}' needs a number, not a condition", _span(expr),
                       "arithmetic works on numbers; conditions go in range filters")

    def _binary(self, expr: ast.Binary, local: dict[str, Symbol], energy_body: bool) -> Type:
        lt = self._type(expr.left, local, energy_body)
        rt = self._type(expr.right, local, energy_body)
        op = expr.op
        if op in ("and", "or"):
            for t, side in ((lt, expr.left), (rt, expr.right)):
                if t is not Type.BOOL:
                    raise _err(f"'{op}' joins conditions", _span(side),
                               "write comparisons on both sides, e.g. 'i > 0 and i < N'")
            return Type.BOOL
        self._numeric(lt, expr.left, op)
        self._numeric(rt, expr.right, op)
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
        if expr.name in BUILTIN_FUNCTIONS:
            lo, hi = BUILTIN_FUNCTIONS[expr.name]
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
                if arg.keyword is not None and not (expr.name == "hazard" and arg.keyword == "k"):
                    raise _err(f"'{expr.name}' takes no keyword '{arg.keyword}'", arg.span,
                               "pass built-in arguments by position"
                               + ("; hazard takes k = ..." if expr.name == "hazard" else ""))
                t = self._type(arg.value, local, energy_body)
                self._numeric(t, arg.value, expr.name)
                types.append(t)
            if Type.VAR in types:
                return Type.VAR
            if expr.name in ("min", "max", "abs") and all(t is Type.INT for t in types):
                return Type.INT
            return Type.REAL
        energy = self.energies.get(expr.name)
        if energy is None:
            if expr.name in self.later:
                self._before_use(expr.name, expr.name_span)
            raise _err(f"unknown function '{expr.name}'", expr.name_span,
                       did_you_mean(expr.name, set(BUILTIN_FUNCTIONS) | set(self.energies)))
        if not energy_body:
            raise _err(f"energy '{expr.name}' can only be used in a factor or an energy body",
                       expr.name_span, "declare it with 'factor NAME[...] = "
                       f"{expr.name}(...)'")
        slot_exprs, param_exprs = self._bind_call(energy, expr)
        for e in slot_exprs + param_exprs:
            self._numeric(self._type(e, local, True), e, expr.name)
        return Type.VAR


def _symbol_type(sym: Symbol) -> Type:
    if sym.kind in (Kind.VAR, Kind.SLOT):
        return Type.VAR
    if sym.kind in (Kind.SIZE, Kind.LOOP):
        return Type.INT
    if sym.kind is Kind.DATA:
        return Type.INT if sym.dtype is DType.INT else Type.REAL
    return Type.REAL


def _span(expr: ast.Expr) -> Span:
    return expr.span


def _name_span(span: Span, name: str) -> Span:
    """The span of `name` in a declaration that starts at `span` ('param NAME ...'), so the
    caret points at the name; the whole declaration's span if the name is not on its line."""
    line = span.source.line(span.line)
    start = span.column - 1
    keyword = re.match(r"(model|size|param|data|var|init|energy|factor|weight)\s+", line[start:])
    if keyword:
        start += keyword.end()
    if re.match(rf"{re.escape(name)}\b", line[start:]):
        return Span(span.source, span.line, start + 1, span.line, start + 1 + len(name))
    return span


def _text(expr: ast.Expr) -> str:
    """The source text of a one-line expression, as the user wrote it."""
    span = expr.span
    if span.line != span.end_line:
        return "..."
    return span.source.line(span.line)[span.column - 1:span.end_column - 1]


def load_text(text: str, name: str) -> Model:
    return check(parse(text, name))
