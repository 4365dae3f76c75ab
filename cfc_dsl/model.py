"""The typed model: what the checker produces from a syntax tree.

Frozen dataclasses only. A `Model` knows every size, parameter, data array, variable,
energy and factor family, with names resolved and call arguments put in slot/parameter
order (defaults filled in). Expressions stay syntax-tree nodes, so spans survive to bind time.
"""

from __future__ import annotations

import hashlib
from dataclasses import field
from enum import Enum

from cfc_dsl import syntax as ast
from cfc_dsl.builtins import CALLABLE
from cfc_dsl.diagnostics import Source, Span
from cfc_dsl.frozen import frozen
from cfc_dsl.notation import format_expr


class DType(Enum):
    INT = "int"
    REAL = "real"


class Target(Enum):
    C = "c"
    CUDA = "cuda"


class ScheduleShape(Enum):
    """How a continuation schedule moves a weight from its start to its value."""

    LINEAR = "linear"  # w_k = start + (value - start) * k / (stages - 1)
    GEOMETRIC = "geometric"  # w_k = start * (value / start) ^ (k / (stages - 1)); both > 0


BUILTIN_FUNCTIONS: dict[str, tuple[int, int]] = {name: b.arity for name, b in CALLABLE.items()}
"""Name -> (minimum, maximum) number of arguments of every built-in a model may call."""


@frozen
class SizeSpec:
    name: str
    default: ast.Expr | None  # None: bound from the shape of a data file
    span: Span = field(compare=False)


@frozen
class ParamSpec:
    name: str
    shape: tuple[ast.Expr, ...]
    default: ast.Expr
    span: Span = field(compare=False)


@frozen
class ObservableSource:
    """`data score[N] from sequence_monotonicity(seed = 42)`: the array comes from a
    registered observable (`cfc_dsl.runtime.observables`), called at bind time with these
    literal keyword arguments (ints stay ints). The checker only checks that every argument
    is a literal; the registry lookup, argument names/types and the shape are checked at
    bind time (`runtime/bind/inputs.py`). A `--data NAME=...` overrides the observable."""

    name: str
    arguments: tuple[tuple[str, int | float], ...]
    span: Span = field(compare=False)  # the whole call
    name_span: Span = field(compare=False)
    argument_spans: tuple[Span, ...] = field(compare=False, default=())

    def call_text(self) -> str:
        return f"{self.name}({', '.join(f'{k} = {v!r}' for k, v in self.arguments)})"


@frozen
class DataSpec:
    name: str
    shape: tuple[ast.Expr, ...]
    dtype: DType
    span: Span = field(compare=False)
    source: ObservableSource | None = None  # None: the array must come from --data / bind


@frozen
class VariableSpec:
    name: str
    shape: tuple[ast.Expr, ...]
    lower: ast.Expr
    upper: ast.Expr
    initial: ast.Expr
    span: Span = field(compare=False)


@frozen
class InitRule:
    var: str
    ranges: ast.Ranges | None
    value: ast.Expr
    span: Span = field(compare=False)


@frozen
class EnergySpec:
    """A named energy: slots (differentiated) and parameters, with a body expression."""

    name: str
    slots: tuple[str, ...]
    params: tuple[ast.EnergyParam, ...]
    body: ast.Expr
    span: Span = field(compare=False)
    builtin: bool = False

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def signature(self) -> str:
        params = ", ".join(
            p.name + (f" = {format_expr(p.default)}" if p.default is not None else "")
            for p in self.params
        )
        return f"{self.name}({', '.join(self.slots)}{'; ' + params if params else ''})"

    def formula(self) -> str:
        return format_expr(self.body)


@frozen
class WeightSchedule:
    """Continuation: `weight chain = 1.0 from 0.1 over 40 [linear|geometric]`.

    The family's weight runs over `stages` stages (a positive integer literal) from `start`
    (stage 0) to the family's `weight` (the last stage, the user's actual objective). `start`
    is a real expression over params, like the weight; for GEOMETRIC both must be > 0 (the
    checker refuses literals, the binder evaluated values). The bound numbers are on
    `FamilyTable.schedule` (`runtime/bind/schedules.py`). Schedules are runtime data: they
    never change the kernel spec."""

    start: ast.Expr
    stages: int
    shape: ScheduleShape
    span: Span = field(compare=False)  # from 'from' to the end of the declaration


@frozen
class Gate:
    """Energy-gated expansion: `factor f[...] = e(...) gated [per instance] cost 0.05`.

    The family is optional: the runtime admits it (as a whole, or each instance when
    `per_instance`) only when its energy saving pays for `cost` (a real expression over
    params; evaluated on `FamilyTable.gate`). Gates are runtime data, not kernel spec."""

    cost: ast.Expr
    per_instance: bool
    span: Span = field(compare=False)  # from 'gated' to the end of the cost


@frozen
class FactorFamily:
    """`factor NAME[ranges] = energy(slot args; param args)`, arguments in energy order.

    `weight` is the family's (final) weight expression, `schedule` its continuation schedule
    (None: a constant weight) and `gate` its expansion gate (None: always present)."""

    name: str
    ranges: ast.Ranges | None
    energy: str
    slot_args: tuple[ast.Name | ast.Index, ...]
    param_args: tuple[ast.Expr, ...]
    weight: ast.Expr
    span: Span = field(compare=False)
    name_span: Span = field(compare=False)
    call_span: Span = field(compare=False)
    schedule: WeightSchedule | None = None
    gate: Gate | None = None

    def clauses_text(self) -> str:
        """' weight 1 from 0.1 over 40 geometric gated per instance cost 0.05', or ''."""
        out = ""
        if self.schedule is not None:
            s = self.schedule
            out += (f" weight {format_expr(self.weight)} from {format_expr(s.start)} over "
                    f"{s.stages} {s.shape.value}")
        if self.gate is not None:
            out += (" gated" + (" per instance" if self.gate.per_instance else "")
                    + f" cost {format_expr(self.gate.cost)}")
        return out

    @property
    def loop_vars(self) -> tuple[str, ...]:
        return tuple(r.var for r in self.ranges.ranges) if self.ranges else ()


@frozen
class Model:
    name: str
    source: Source
    sizes: tuple[SizeSpec, ...]
    params: tuple[ParamSpec, ...]
    data: tuple[DataSpec, ...]
    variables: tuple[VariableSpec, ...]
    inits: tuple[InitRule, ...]
    energies: tuple[EnergySpec, ...]  # every energy the model can see, stdlib first
    families: tuple[FactorFamily, ...]

    def energy(self, name: str) -> EnergySpec:
        return next(e for e in self.energies if e.name == name)

    @property
    def used_energies(self) -> tuple[EnergySpec, ...]:
        """Energies some family instantiates, plus the energies their bodies call, sorted."""
        used = {f.energy for f in self.families}
        return tuple(sorted((e for e in self.energies if e.name in used), key=lambda e: e.name))

    def kernel_spec(self) -> str:
        """Canonical text of everything that decides the generated kernels.

        Sizes, parameter values, data and the factor graph are runtime data and are not in
        it, so changing them never recompiles.
        """
        lines = [f"model {self.name}"]
        by_name = {e.name: e for e in self.energies}
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen or name not in by_name:
                return
            seen.add(name)
            energy = by_name[name]
            for callee in sorted(called_names(energy.body)):
                visit(callee)
            lines.append(f"energy {energy.signature()} = {energy.formula()}")

        for energy in self.used_energies:
            visit(energy.name)
        return "\n".join(lines) + "\n"

    def kernel_spec_digest(self) -> str:
        return hashlib.sha256(self.kernel_spec().encode()).hexdigest()


def called_names(expr: ast.Expr) -> set[str]:
    """Names of every function or energy called inside `expr`."""
    out: set[str] = set()
    for node in walk(expr):
        if isinstance(node, ast.Call):
            out.add(node.name)
    return out


def walk(expr: ast.Expr):  # type: ignore[no-untyped-def]
    """Pre-order iteration over an expression tree."""
    yield expr
    if isinstance(expr, ast.Index):
        for sub in expr.indices:
            yield from walk(sub)
    elif isinstance(expr, ast.Unary):
        yield from walk(expr.operand)
    elif isinstance(expr, ast.Binary):
        yield from walk(expr.left)
        yield from walk(expr.right)
    elif isinstance(expr, ast.Call):
        for arg in expr.slot_args + expr.param_args:
            yield from walk(arg.value)
