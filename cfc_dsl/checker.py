"""Check stage: syntax tree -> typed `Model`, or a `CfcError` that points at the source.

One pass in declaration order (names are declared before use), a handler per declaration.
Expressions are typed (scope.py) in context: integer (sizes, ranges, indices), real, boolean
(range filters) or energy body; call arguments are bound in arguments.py.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

from cfc_dsl import syntax as ast
from cfc_dsl.arguments import bind_call
from cfc_dsl.clauses import check_gate, check_schedule, check_source
from cfc_dsl.diagnostics import Source, Span, did_you_mean, plural
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
    WeightSchedule,
    walk,
)
from cfc_dsl.parser import parse
from cfc_dsl.reserved import RESERVED_ENERGY_NAMES
from cfc_dsl.scope import ExprTyper, Kind, Symbol, Type
from cfc_dsl.scope import semantic_error as _err


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
        self.schedules: dict[str, WeightSchedule] = {}
        self.model_name: str | None = None
        self.source: Source | None = None
        self.later = self._declared_later()
        self.typer = ExprTyper(self.scope, self.energies, self.later)

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
                fam = replace(fam, weight=w.value, schedule=self.schedules.get(name))
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
                    self.typer.before_use(dim.name, dim.span)
                # an undeclared size in a data shape is bound from the data file
                self._declare(dim.name, Symbol(Kind.SIZE, 0, DType.INT, dim.span), dim.span)
                self.sizes.append(SizeSpec(dim.name, None, dim.span))
            else:
                self._expect(dim, Type.INT, f"a dimension of '{d.name}'", set())
        self._declare(d.name, Symbol(Kind.DATA, len(d.shape), dtype, d.span), d.span)
        source = check_source(d.source, d.name) if d.source is not None else None
        self.data.append(DataSpec(d.name, d.shape, dtype, d.span, source))

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
        if d.name in RESERVED_ENERGY_NAMES:
            raise _err(f"'{d.name}' cannot name an energy: its kernels would clash with "
                       f"{RESERVED_ENERGY_NAMES[d.name]} in the generated C", d.name_span,
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
        for node in walk(d.body):
            if isinstance(node, ast.Call) and node.name == d.name:
                raise _err(f"energy '{d.name}' calls itself", node.name_span,
                           "an energy body may call only energies defined before it; write "
                           "the repeated term out, or define a helper energy first")
        self.typer.type_of(d.body, local, energy_body=True)
        self.energies[d.name] = EnergySpec(d.name, d.slots, d.params, d.body, d.span)

    def _FactorDecl(self, d: ast.FactorDecl) -> None:
        if d.name in self.families:
            first = self.families[d.name].span
            raise _err(f"factor family '{d.name}' is already declared on line {first.line}",
                       d.name_span, "give each factor family its own name")
        loops = self._ranges(d.ranges)
        call = d.call
        if not isinstance(call, ast.Call):
            raise _err(f"factor '{d.name}' must be a call of an energy", call.span,
                       "write it as energy(variables; parameters), e.g. landau(eta[i]; a = -0.5)")
        if call.name in BUILTIN_FUNCTIONS:
            raise _err(f"'{call.name}' is a built-in function, not an energy", call.name_span,
                       "define an energy with it first: energy e(x) = ... , then call e(...)")
        energy = self.energies.get(call.name)
        if energy is None:
            if call.name in self.later:
                self.typer.before_use(call.name, call.name_span)
            raise _err(f"unknown energy '{call.name}'", call.name_span,
                       did_you_mean(call.name, set(self.energies)))
        slot_exprs, param_exprs = bind_call(energy, call)
        slots: list[ast.Name | ast.Index] = []
        for slot, expr in zip(energy.slots, slot_exprs, strict=True):
            slots.append(self._variable_ref(expr, slot, energy, loops))
        params = []
        for p, expr in zip(energy.params, param_exprs, strict=True):
            self._expect(expr, Type.REAL, f"parameter '{p.name}' of '{energy.name}'", loops,
                         param_of=energy.name)
            params.append(expr)
        one = ast.Number(1.0, True, d.span)
        gate = (check_gate(d.gate, d.name, tuple(loops), self._expect_param)
                if d.gate is not None else None)
        self.families[d.name] = FactorFamily(d.name, d.ranges, energy.name, tuple(slots),
                                             tuple(params), one, d.span, d.name_span, call.span,
                                             gate=gate)

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
        if d.schedule is not None:
            self.schedules[d.family] = check_schedule(d.schedule, d.family, d.value,
                                                      self._expect_param)

    # ---------------------------------------------------------------- pieces
    def _var_shape(self, name: str) -> tuple[ast.Expr, ...]:
        return next((v.shape for v in self.variables if v.name == name), ())

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
            t = self.typer.type_of(ranges.condition, self._locals(loops))
            if t is not Type.BOOL:
                raise _err("a range filter must be a condition", ranges.condition.span,
                           "compare values, e.g. 'if i % 4 == 0' or 'if i != j'")
        return loops

    def _locals(self, loops: set[str]) -> dict[str, Symbol]:
        span = Span(self.source, 1, 1, 1, 1) if self.source else None  # type: ignore[arg-type]
        return {name: Symbol(Kind.LOOP, 0, DType.INT, span) for name in loops}  # type: ignore[arg-type]

    def _expect(self, expr: ast.Expr, want: Type, what: str, loops: set[str],
                param_of: str | None = None) -> None:
        got = self.typer.type_of(expr, self._locals(loops))
        if got is Type.VAR:
            hint = ("variables can only fill an energy's slots (before ';'); parameters are "
                    "fixed numbers" if param_of else
                    "only an energy's slots take variables; use numbers, sizes, parameters "
                    "and data here")
            raise _err(f"{what} cannot depend on a variable", expr.span, hint)
        if got is Type.BOOL:
            raise _err(f"{what} must be a number, not a condition", expr.span,
                       "conditions belong in a range filter: [i in 0..N if ...]")
        if want is Type.INT and got is not Type.INT:
            raise _err(f"{what} must be an integer", expr.span,
                       "use integer sizes and literals; '//' is integer division")

    def _expect_param(self, expr: ast.Expr, want: Type, what: str) -> None:
        self._expect(expr, want, what, set())

    def _expect_constant(self, expr: ast.Expr, what: str) -> None:
        # An energy is derived once, apart from any model, so its defaults can name nothing.
        named = next((n for n in walk(expr) if isinstance(n, ast.Name | ast.Index)), None)
        if named is not None:
            raise _err(f"{what} must be a constant number, not '{named.name}'", named.span,
                       "energy parameter defaults are literal numbers like 0.5; pass model "
                       "parameters as arguments where the energy is used")
        t = self.typer.type_of(expr, {})
        if t in (Type.VAR, Type.BOOL):
            raise _err(f"{what} must be a constant number", expr.span,
                       "energy parameter defaults are literal numbers like 0.5")

    def _variable_ref(self, expr: ast.Expr, slot: str, energy: EnergySpec,
                      loops: set[str]) -> ast.Name | ast.Index:
        name = expr.name if isinstance(expr, ast.Name | ast.Index) else None
        sym = self.scope.get(name) if name else None
        if sym is not None and sym.kind is Kind.VAR:
            self.typer.type_of(expr, self._locals(loops))  # checks rank and index types
            return expr  # type: ignore[return-value]
        t = self.typer.type_of(expr, self._locals(loops))
        if t is Type.VAR:
            raise _err(f"slot '{slot}' of '{energy.name}' takes one variable element, not an "
                       "expression", expr.span,
                       "move the expression into an energy body: energy e(x, y) = ...")
        raise _err(f"slot '{slot}' of '{energy.name}' needs a variable, but this is a "
                   f"{'parameter expression' if t is not Type.BOOL else 'condition'}",
                   expr.span,
                   f"pass a variable like eta[i] here; numbers go after ';' as parameters of "
                   f"{energy.signature()}")


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
