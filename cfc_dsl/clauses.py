"""Check stage for the declaration clauses: weight schedules, gates and observable sources.

`weight f = 1.0 from 0.1 over 40 geometric`, `factor f = e(...) gated [per instance] cost c`
and `data d[N] from observable(k = literal)` become the model's `WeightSchedule`, `Gate` and
`ObservableSource`. The checker (`checker.py`) calls these with its own expression check;
what depends on parameter values or on the observable registry is checked at bind time.
"""

from __future__ import annotations

from collections.abc import Callable

from cfc_dsl import syntax as ast
from cfc_dsl.model import Gate, ObservableSource, ScheduleShape, WeightSchedule, walk
from cfc_dsl.scope import Type
from cfc_dsl.scope import semantic_error as _err

Expect = Callable[[ast.Expr, Type, str], None]
"""The checker's check that an expression (over params, no loop indices) has a type."""


def literal_number(expr: ast.Expr) -> int | float | None:
    """The value of a literal number (`42`, `0.5`, `-1e-3`), or None for anything else.
    Integer literals stay ints, so an observable's int arguments keep their type."""
    if isinstance(expr, ast.Number):
        return int(expr.value) if expr.is_integer else expr.value
    if isinstance(expr, ast.Unary) and expr.op == "-" and isinstance(expr.operand, ast.Number):
        inner = literal_number(expr.operand)
        return None if inner is None else -inner
    return None


def check_schedule(clause: ast.ScheduleClause, family: str, value: ast.Expr,
                   expect: Expect) -> WeightSchedule:
    """`from START over STAGES [linear|geometric]` on the weight `value` of `family`."""
    expect(clause.start, Type.REAL, f"the start weight of '{family}'")
    stages = literal_number(clause.stages)
    if not isinstance(stages, int) or stages < 1:
        raise _err(f"'over' takes the number of stages of '{family}' as a whole number >= 1",
                   clause.stages.span,
                   f"write a literal count, as in 'weight {family} = 1.0 from 0.1 over 40'")
    shape = ScheduleShape.GEOMETRIC if clause.shape == "geometric" else ScheduleShape.LINEAR
    if shape is ScheduleShape.GEOMETRIC:
        for expr, which in ((clause.start, "start"), (value, "final")):
            number = literal_number(expr)
            if number is not None and number <= 0:
                raise _err(f"a geometric schedule needs weights > 0, but the {which} weight of "
                           f"'{family}' is {number:g}", expr.span,
                           "make both weights positive, or drop 'geometric' for a linear ramp")
    return WeightSchedule(clause.start, stages, shape, clause.span)


def check_gate(clause: ast.GateClause, family: str, loops: tuple[str, ...],
               expect: Expect) -> Gate:
    """`gated [per instance] cost EXPR` on `family` (loop indices `loops`): the cost is one
    real expression over params, >= 0, the same for every instance."""
    index = next((n for n in walk(clause.cost) if isinstance(n, ast.Name) and n.name in loops),
                 None)
    if index is not None:
        raise _err(f"the gate cost of '{family}' cannot use the loop index '{index.name}'",
                   index.span, "a gate has one cost, the same for each instance (with 'per "
                   "instance' too); use numbers, sizes and parameters")
    expect(clause.cost, Type.REAL, f"the gate cost of '{family}'")
    number = literal_number(clause.cost)
    if number is not None and number < 0:
        raise _err(f"the gate cost of '{family}' is {number:g}, below 0", clause.cost.span,
                   "a cost is what admitting the family must pay for: give 0 or more")
    return Gate(clause.cost, clause.per_instance, clause.span)


def check_source(expr: ast.Expr, data: str) -> ObservableSource:
    """`from NAME(k = literal, ...)` on the data declaration `data`. Only the form is checked
    here: the language layer cannot see the registry, so the binder looks the name up."""
    example = f"write 'data {data}[N] from sequence_monotonicity(seed = 42)'"
    if not isinstance(expr, ast.Call):
        raise _err(f"data '{data}' must come from a call of a registered observable",
                   expr.span, example)
    if expr.has_separator and expr.param_args:
        raise _err(f"observable '{expr.name}' takes keyword arguments only, with no ';'",
                   expr.span, "separate the arguments with ',': name = value, ...")
    arguments: list[tuple[str, int | float]] = []
    spans = []
    for arg in expr.slot_args + expr.param_args:
        if arg.keyword is None:
            raise _err(f"the arguments of observable '{expr.name}' must be named", arg.span,
                       f"write it as NAME = value, as in '{expr.name}(seed = 42)'")
        if any(arg.keyword == k for k, _ in arguments):
            raise _err(f"argument '{arg.keyword}' is given twice", arg.span,
                       "give each argument once")
        value = literal_number(arg.value)
        if value is None:
            raise _err(f"argument '{arg.keyword}' of observable '{expr.name}' must be a literal "
                       "number", arg.value.span,
                       "observables are called once at bind time with constants: no names, "
                       "parameters or arithmetic; nothing in a model file is executed")
        arguments.append((arg.keyword, value))
        spans.append(arg.span)
    return ObservableSource(expr.name, tuple(arguments), expr.span, expr.name_span, tuple(spans))
