"""The syntax tree: what the parser produces and the checker consumes.

Plain frozen dataclasses. Every node carries the `Span` it came from, so any later stage
(the checker, the binder, the graph validator) can point back at the user's text.
"""

from __future__ import annotations

from dataclasses import field

from cfc_dsl.diagnostics import Span
from cfc_dsl.frozen import frozen

# ---------------------------------------------------------------- expressions


@frozen
class Number:
    value: float
    is_integer: bool
    span: Span = field(compare=False)


@frozen
class Name:
    name: str
    span: Span = field(compare=False)


@frozen
class Index:
    """`x[i, j]`: an element of a variable, parameter or data array."""

    name: str
    indices: tuple[Expr, ...]
    span: Span = field(compare=False)
    name_span: Span = field(compare=False)


@frozen
class Unary:
    op: str  # "-" or "not"
    operand: Expr
    span: Span = field(compare=False)


@frozen
class Binary:
    op: str  # + - * / // % ^ < <= > >= == != and or
    left: Expr
    right: Expr
    span: Span = field(compare=False)


@frozen
class Argument:
    """One call argument; `keyword` is None for a positional one."""

    keyword: str | None
    value: Expr
    span: Span = field(compare=False)


@frozen
class Call:
    """`f(a, b; p = 1)`. Arguments before `;` are slot (variable) arguments."""

    name: str
    slot_args: tuple[Argument, ...]
    param_args: tuple[Argument, ...]
    has_separator: bool
    span: Span = field(compare=False)
    name_span: Span = field(compare=False)


Expr = Number | Name | Index | Unary | Binary | Call

# ---------------------------------------------------------------- declarations


@frozen
class Range:
    var: str
    start: Expr
    stop: Expr
    span: Span = field(compare=False)


@frozen
class Ranges:
    ranges: tuple[Range, ...]
    condition: Expr | None
    span: Span = field(compare=False)


@frozen
class ModelDecl:
    name: str
    span: Span = field(compare=False)


@frozen
class SizeDecl:
    name: str
    default: Expr
    span: Span = field(compare=False)


@frozen
class ParamDecl:
    name: str
    shape: tuple[Expr, ...]
    default: Expr
    span: Span = field(compare=False)


@frozen
class DataDecl:
    name: str
    shape: tuple[Expr, ...]
    dtype: str | None
    span: Span = field(compare=False)
    dtype_span: Span | None = field(compare=False, default=None)
    source: Expr | None = None  # `from observable(k = literal, ...)`; the checker checks it


@frozen
class VarDecl:
    name: str
    shape: tuple[Expr, ...]
    lower: Expr | None
    upper: Expr | None
    initial: Expr | None
    span: Span = field(compare=False)


@frozen
class InitDecl:
    name: str
    ranges: Ranges | None
    value: Expr
    span: Span = field(compare=False)


@frozen
class EnergyParam:
    name: str
    default: Expr | None
    span: Span = field(compare=False)


@frozen
class EnergyDecl:
    name: str
    slots: tuple[str, ...]
    params: tuple[EnergyParam, ...]
    body: Expr
    span: Span = field(compare=False)
    name_span: Span = field(compare=False)


@frozen
class GateClause:
    """`gated [per instance] cost EXPR` after a factor's call."""

    cost: Expr
    per_instance: bool
    span: Span = field(compare=False)


@frozen
class FactorDecl:
    name: str
    ranges: Ranges | None
    call: Expr  # must be a Call; the checker says so when it is not
    span: Span = field(compare=False)
    name_span: Span = field(compare=False)
    gate: GateClause | None = None


@frozen
class ScheduleClause:
    """`from START over STAGES [linear|geometric]` after a weight's value."""

    start: Expr
    stages: Expr  # the checker requires a positive integer literal
    shape: str | None  # "linear", "geometric", or None (linear)
    span: Span = field(compare=False)
    shape_span: Span | None = field(compare=False, default=None)


@frozen
class WeightDecl:
    family: str
    value: Expr
    span: Span = field(compare=False)
    name_span: Span = field(compare=False)
    schedule: ScheduleClause | None = None


Decl = (
    ModelDecl | SizeDecl | ParamDecl | DataDecl | VarDecl | InitDecl | EnergyDecl | FactorDecl
    | WeightDecl
)


@frozen
class Program:
    decls: tuple[Decl, ...]
    source_name: str
