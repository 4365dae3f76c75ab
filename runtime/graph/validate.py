"""Graph validation: warnings and notes about a bound factor graph, and its summary.

Runs after the bind stage on the instance tables (NumPy only, so a million factors
check in well under a second). Every finding points at the declaration it concerns, like any
other cfc message. `cfc compile` and `cfc check` print them through `report_findings`.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from cfc_dsl import syntax as ast
from cfc_dsl.diagnostics import CfcError, Diagnostic, ErrorKind, Severity, Span
from cfc_dsl.model import Model
from cfc_dsl.runtime.bind.evaluate import Env
from cfc_dsl.runtime.bind.tables import (
    BoundModel,
    DataInput,
    FamilyTable,
    Setting,
    bind,
    expand_ranges,
)
from cfc_dsl.runtime.graph.components import connected_components

BENEFIT_ENERGIES = ("gate_benefit", "damped_gate_benefit")
SHOWN = 3  # elements or instances named in one message


@dataclass(frozen=True)
class GraphSummary:
    """Counts that describe a bound factor graph."""

    model: str
    sizes: dict[str, int]
    variables: int
    factors: dict[str, int]  # family -> instances, in declaration order
    degrees: dict[int, int]  # argument slots touching a variable -> how many variables
    components: tuple[int, ...]  # variables per connected component, largest first
    cycle_basis: int  # independent cycles of the variable–factor graph

    def lines(self) -> list[str]:
        at = ", ".join(f"{k} = {v}" for k, v in self.sizes.items())
        factors = ", ".join(f"{k} {v}" for k, v in self.factors.items()) or "none"
        degrees = ", ".join(f"{d}: {c}" for d, c in self.degrees.items()) or "none"
        comps = _counted(self.components)
        return [
            f"factor graph of {self.model}{' at ' + at if at else ''}: "
            f"{_plural(self.variables, 'variable')}, "
            f"{_plural(sum(self.factors.values()), 'factor')}",
            f"  factors per family: {factors}",
            f"  variable degree (slots: variables): {degrees}",
            f"  connected components: {len(self.components)} (variables per component: {comps})",
            f"  cycle basis: {self.cycle_basis} independent cycles (of the bipartite "
            "variable–factor graph, as nx.cycle_basis counts them)",
        ]

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "sizes": self.sizes, "variables": self.variables,
                "factors": self.factors, "degrees": {str(k): v for k, v in self.degrees.items()},
                "components": list(self.components), "cycle_basis": self.cycle_basis,
                "cycle_basis_of": "variable-factor graph"}


@dataclass(frozen=True)
class GraphReport:
    """What `check_graph` finds; `summary` is None when the graph could not be bound."""

    diagnostics: tuple[Diagnostic, ...]
    summary: GraphSummary | None

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.WARNING)

    def to_json(self) -> dict[str, Any]:
        return {"findings": [diagnostic_json(d) for d in self.diagnostics],
                "summary": self.summary.to_json() if self.summary else None}


def diagnostic_json(d: Diagnostic) -> dict[str, Any]:
    out: dict[str, Any] = {"severity": d.severity.value, "message": d.message, "hint": d.hint}
    if d.span is not None:
        out.update(file=d.span.source.name, line=d.span.line, column=d.span.column)
    return out


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _counted(values: tuple[int, ...] | list[int]) -> str:
    """'62, 1 ×2' for (62, 1, 1): run-length, so a thousand singletons stay one line."""
    parts = []
    for value, count in Counter(values).items():
        parts.append(f"{value}" + (f" ×{count}" if count > 1 else ""))
    return ", ".join(parts)


# ---------------------------------------------------------------- entry points
def check_graph(model: Model, settings: tuple[Setting, ...] = (),
                data: tuple[DataInput, ...] = ()) -> GraphReport:
    """Bind `model` (default sizes unless `settings` say otherwise) and validate its graph.

    A model that reads data is only bound when every data array is given; otherwise the
    report holds one note that says to pass --data.
    """
    given = {d.name for d in data}
    missing = [d for d in model.data if d.name not in given and d.source is None]
    if missing:
        names = ", ".join(f"'{d.name}'" for d in missing)
        flags = " ".join(f"--data {d.name}=PATH" for d in missing)
        note = Diagnostic(Severity.NOTE, f"factor-graph checks skipped: the model reads data "
                          f"({names}) and none was given", missing[0].span,
                          f"pass {flags} to check the bound graph")
        return GraphReport((note,), None)
    bound = bind(model, settings, data)
    return GraphReport(tuple(findings(bound)), summarize(bound))


def report_findings(model: Model, strict: bool = False, settings: tuple[Setting, ...] = (),
                    data: tuple[DataInput, ...] = (), *, summary: bool = False,
                    stream: TextIO | None = None) -> GraphReport:
    """Print the graph findings (and optionally the summary) to stderr.

    Under `strict`, warnings print as errors and a `CfcError` (exit code 2) is raised.
    """
    out = stream if stream is not None else sys.stderr
    report = check_graph(model, settings, data)
    for d in report.diagnostics:
        severity = Severity.ERROR if strict and d.severity is Severity.WARNING else d.severity
        print(Diagnostic(severity, d.message, d.span, d.hint).render(), file=out)
    if summary and report.summary:
        print("\n".join(report.summary.lines()), file=out)
    if strict and report.warnings:
        count = len(report.warnings)
        raise CfcError(ErrorKind.SEMANTIC,
                       f"{count} factor-graph warning{'s' if count > 1 else ''}, and --strict "
                       "treats warnings as errors", None,
                       "fix the model (each message above says where), or drop --strict")
    return report


# ---------------------------------------------------------------- the checks
def findings(bound: BoundModel) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    out += _untouched_variables(bound)
    for table in bound.families:
        out += _empty_family(bound, table)
        out += _repeated_slot(bound, table)
        out += _duplicates(bound, table)
    out += _components(bound)
    out += _closed_gates(bound)
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.NOTE: 2}
    return sorted(out, key=lambda d: (order[d.severity], d.span.line if d.span else 0,
                                      d.span.column if d.span else 0))


def degrees(bound: BoundModel) -> np.ndarray:
    """Argument slots touching each variable (its degree in the NetworkX multigraph)."""
    counts = np.zeros(bound.n, dtype=np.int64)
    for table in bound.families:
        for column in table.slots:
            counts += np.bincount(column, minlength=bound.n)
    return counts


def components(bound: BoundModel) -> tuple[int, np.ndarray]:
    """Connected components of the variable–factor graph, as labels over all its nodes.

    Nodes 0..n-1 are the variables; the factors of each family follow in order.
    """
    rows, cols = [], []
    offset = bound.n
    for table in bound.families:
        ids = offset + np.arange(table.size, dtype=np.int64)
        for column in table.slots:
            rows.append(ids)
            cols.append(column)
        offset += table.size
    row = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    col = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    return connected_components(offset, row, col)


def _distinct_per_instance(table: FamilyTable) -> np.ndarray:
    if not table.slots:
        return np.zeros(table.size, np.int64)
    stacked = np.sort(np.column_stack(table.slots), axis=1)
    return 1 + np.count_nonzero(np.diff(stacked, axis=1), axis=1)


def summarize(bound: BoundModel) -> GraphSummary:
    deg = degrees(bound)
    count, labels = components(bound)
    var_labels = labels[:bound.n]
    sizes = np.bincount(var_labels, minlength=count)
    per_component = tuple(sorted((int(s) for s in sizes if s > 0), reverse=True))
    nodes = bound.n + sum(t.size for t in bound.families)
    # cycle rank E - V + C of the simple bipartite graph (parallel slot edges merged);
    # it equals len(nx.cycle_basis(G)) for the graph cfc_dsl.runtime.graph.bipartite builds, made simple
    edges = sum(int(_distinct_per_instance(t).sum()) for t in bound.families)
    distribution = Counter(int(d) for d in deg)
    return GraphSummary(bound.model.name, dict(bound.sizes), bound.n,
                        {t.name: t.size for t in bound.families},
                        dict(sorted(distribution.items())), per_component,
                        edges - nodes + count)


def _instances(table: FamilyTable, picks: np.ndarray) -> str:
    return "; ".join(table.describe(int(k)).split(" at ", 1)[-1] if table.loops
                     else table.name for k in picks[:SHOWN]) + ("; ..." if picks.size > SHOWN else "")


def _untouched_variables(bound: BoundModel) -> list[Diagnostic]:
    deg = degrees(bound)
    out = []
    for v, spec in zip(bound.layout, bound.model.variables, strict=True):
        idle = np.flatnonzero(deg[v.offset:v.offset + v.size] == 0) + v.offset
        if not idle.size:
            continue
        if not v.shape:
            out.append(Diagnostic(Severity.WARNING, f"variable '{v.name}' is touched by no "
                                  "factor", spec.span, "nothing acts on it, so it keeps its "
                                  "initial value; add a factor on it or remove it"))
            continue
        shown = ", ".join(v.element(int(i)) for i in idle[:SHOWN])
        more = ", ..." if idle.size > SHOWN else ""
        out.append(Diagnostic(Severity.WARNING, f"{idle.size} of {v.size} elements of '{v.name}' "
                              f"are touched by no factor ({shown}{more})", spec.span,
                              "nothing acts on them, so they keep their initial values; add a "
                              "factor on them or shrink the variable"))
    return out


def _base_env(bound: BoundModel) -> Env:
    scalars: dict[str, Any] = dict(bound.sizes)
    scalars.update({k: v for k, v in bound.params.items() if not isinstance(v, np.ndarray)})
    return Env(scalars, dict(bound.data))


def _empty_family(bound: BoundModel, table: FamilyTable) -> list[Diagnostic]:
    family = table.family
    if table.size or family.ranges is None:
        return []
    ranges = family.ranges
    if ranges.condition is not None:
        unfiltered = ast.Ranges(ranges.ranges, None, ranges.span)
        loops = expand_ranges(unfiltered, _base_env(bound), f"factor '{family.name}'")
        candidates = len(next(iter(loops.values()))) if loops else 0
        if candidates:
            return [Diagnostic(Severity.WARNING, f"the 'if' filter of factor '{family.name}' "
                               f"keeps none of its {candidates} instances", _span(ranges.condition),
                               "the family adds nothing; check the condition against the sizes")]
    at = ", ".join(f"{k} = {v}" for k, v in bound.sizes.items())
    return [Diagnostic(Severity.WARNING, f"factor '{family.name}' has no instances: its ranges "
                       f"are empty{' at ' + at if at else ''}", ranges.span,
                       "the family adds nothing; check the range bounds or the sizes")]


def _span(expr: ast.Expr) -> Span:
    return expr.span


def _repeated_slot(bound: BoundModel, table: FamilyTable) -> list[Diagnostic]:
    slots = bound.model.energy(table.energy).slots
    out = []
    for a in range(len(table.slots)):
        for b in range(a + 1, len(table.slots)):
            same = np.flatnonzero(table.slots[a] == table.slots[b])
            if not same.size:
                continue
            k = int(same[0])
            args = ", ".join(bound.element(int(s[k])) for s in table.slots)
            many = f"{same.size} instances" if same.size > 1 else "one instance"
            verb = "pass" if same.size > 1 else "passes"
            out.append(Diagnostic(
                Severity.WARNING,
                f"{many} of factor '{table.name}' {verb} the same variable to slots "
                f"'{slots[a]}' and '{slots[b]}' ({_instances(table, same)}), e.g. "
                f"{table.energy}({args})", table.family.call_span,
                "a term like quadratic(x, x) is constant; check the index expressions "
                "(a wrap-around with %, or a data row whose two ends are equal?)"))
    return out


def _duplicates(bound: BoundModel, table: FamilyTable) -> list[Diagnostic]:
    if table.size < 2:
        return []
    columns = [c.astype(np.float64) for c in table.slots] + list(table.params)
    rows = np.column_stack(columns)
    _, first, inverse, counts = np.unique(rows, axis=0, return_index=True,
                                          return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    repeated = np.flatnonzero(first[inverse] != np.arange(table.size))
    if not repeated.size:
        return []
    k = int(repeated[0])
    original = int(first[inverse[k]])
    def at(i: int) -> str:
        return table.describe(i).split(" at ", 1)[-1]

    return [Diagnostic(
        Severity.WARNING,
        f"factor '{table.name}' has {repeated.size} duplicate instance"
        f"{'s' if repeated.size > 1 else ''} (the same variables and parameters as an earlier "
        f"one: {at(k)} repeats {at(original)})",
        table.family.span,
        f"each duplicate adds the same term again; fix the ranges or data, or scale the family "
        f"with 'weight {table.name} = ...'")]


def _components(bound: BoundModel) -> list[Diagnostic]:
    count, labels = components(bound)
    var_labels = labels[:bound.n]
    present, sizes = np.unique(var_labels, return_counts=True)
    if present.size <= 1:
        return []
    order = sorted(range(present.size), key=lambda i: (-int(sizes[i]), int(present[i])))
    smallest = present[order[-1]]
    member = int(np.flatnonzero(var_labels == smallest)[0])
    layout = next(v for v in bound.layout if v.offset <= member < v.offset + v.size)
    spec = next(s for s in bound.model.variables if s.name == layout.name)
    sizes_text = _counted([int(sizes[i]) for i in order])
    return [Diagnostic(
        Severity.NOTE,
        f"the factor graph has {present.size} connected components (variables per component: "
        f"{sizes_text}); each relaxes on its own",
        spec.span,
        f"{layout.element(member)} is in the smallest; couple the parts with a factor if they "
        "should interact")]


def _closed_gates(bound: BoundModel) -> list[Diagnostic]:
    benefit = np.zeros(bound.n, bool)
    pays = np.zeros(bound.n, bool)
    first_family: dict[int, FamilyTable] = {}
    for table in bound.families:
        if table.energy not in BENEFIT_ENERGIES:
            continue
        energy = bound.model.energy(table.energy)
        delta = table.params[energy.param_names.index("delta")]
        for column in table.slots:
            benefit[column] = True
            np.logical_or.at(pays, column, delta > 0)
            for flat in np.unique(column):
                first_family.setdefault(int(flat), table)
    closed = np.flatnonzero(benefit & ~pays)
    out = []
    for v in bound.layout:
        mine = closed[(closed >= v.offset) & (closed < v.offset + v.size)]
        if not mine.size:
            continue
        table = first_family[int(mine[0])]
        shown = ", ".join(bound.element(int(i)) for i in mine[:SHOWN]) + (", ..." if mine.size > SHOWN else "")
        what = f"gate '{v.name}'" if not v.shape else f"{mine.size} gate(s) of '{v.name}' ({shown})"
        out.append(Diagnostic(
            Severity.NOTE,
            f"{what} can never open: every benefit term on it has delta <= 0 "
            f"(family '{table.name}')", table.family.call_span,
            "a benefit -w*g*delta pays only for delta > 0, so the gate stays at its lower "
            "bound; make delta positive or remove the gate"))
    return out
