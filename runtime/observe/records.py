"""What a solver's run tells its listeners: one frozen `StepRecord` per step (accepted steps
and, where a solver reports them, rejected trials), the `Tracker` protocol that listens
(the trace, the progress bar, a user's own), and `Observe`: who listens and what is worth
computing for them (per-family gradient norms, per-variable columns). `recorder.py`
builds the records inside the shared `Run` loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from cfc_dsl.diagnostics import CfcError, ErrorKind, Span
from cfc_dsl.frozen import frozen

MAX_TRACED = 1000  # a traced variable with more elements needs an explicit index range


@frozen
class VariableStats:
    """min / mean / max of one variable at the recorded state."""

    name: str
    min: float
    mean: float
    max: float


@frozen
class StepRecord:
    """One step of a relaxation. Step 0 is the initial state; a rejected trial repeats the
    step number of the step it tried to take, with `accepted` false and the trial's energy.

    `grad_norm` is the projected gradient's max-norm, `step_size` the step t the solver used,
    `step_length` the Euclidean length ‖x+ − x‖ of the move, `wall_time` the seconds since
    the previous record and `evaluations` the energy evaluations since it."""

    step: int
    energy: float
    families: tuple[float, ...]  # weighted energy of each family, in family order
    grad_norm: float
    step_size: float
    step_length: float
    backtracks: int
    accepted: bool
    wall_time: float
    evaluations: int
    family_grad_norms: tuple[float, ...] | None = None  # ‖w_f ∇E_f‖₂, when computed
    variables: tuple[VariableStats, ...] = ()
    values: tuple[tuple[str, float], ...] = ()  # --trace-vars columns, e.g. ("eta[3]", 0.4)
    extra: tuple[tuple[str, float], ...] = ()  # margin, min_curvature, stage, weight.F, ...


@runtime_checkable
class Tracker(Protocol):
    """A listener of a run: called once per record, then once with the final result."""

    def on_step(self, record: StepRecord) -> None: ...

    def on_finish(self, result: Any) -> None: ...


@frozen
class TraceVar:
    """A variable whose elements get their own trace columns: flat state indices and the
    column name of each."""

    name: str
    indices: tuple[int, ...]
    columns: tuple[str, ...]


@frozen
class VariableSpan:
    """Where one variable lies in the flat state (for min/mean/max columns)."""

    name: str
    offset: int
    size: int


@frozen
class Observe:
    """Who listens to a run and what is computed for them. `problem.relax(progress=...)`
    takes one; a plain callable (step, energy, |projected gradient|) still works."""

    trackers: tuple[Tracker, ...] = ()
    variables: tuple[VariableSpan, ...] = ()
    trace_vars: tuple[TraceVar, ...] = ()
    family_grads: bool = False  # one extra per-family gradient pass per accepted step
    rejected: bool = False  # rows for the trials a solver turns down (pgd reports them)


class CallbackTracker:
    """The old progress hook (step, energy, |projected gradient|) as a tracker."""

    def __init__(self, callback: Callable[[int, float, float], None]):
        self.callback = callback

    def on_step(self, record: StepRecord) -> None:
        if record.accepted and record.step > 0:
            self.callback(record.step, record.energy, record.grad_norm)

    def on_finish(self, result: Any) -> None:
        pass


def as_observe(progress: Any) -> Observe:
    """An `Observe` from what a solver was handed as `progress`."""
    if progress is None:
        return Observe()
    if isinstance(progress, Observe):
        return progress
    if isinstance(progress, Tracker):
        return Observe(trackers=(progress,))
    if callable(progress):
        return Observe(trackers=(CallbackTracker(progress),))
    raise TypeError(f"progress must be a callable, a Tracker or an Observe, not {progress!r}")


def parse_trace_vars(spec: str, layout: Sequence[Any], span: Span | None = None
                     ) -> tuple[TraceVar, ...]:
    """`eta,gate` or `eta[0:100],x[3]` -> the traced elements. `layout` holds objects with
    name, shape, offset, size and element(flat) (the bound model's VariableLayout)."""
    by_name = {v.name: v for v in layout}
    out: list[TraceVar] = []
    for item in split_items(spec):
        name, lo, hi = parse_item(item, span, "--trace-vars")
        if name not in by_name:
            import difflib

            close = difflib.get_close_matches(name, list(by_name), n=1)
            raise CfcError(ErrorKind.ARGUMENT, f"--trace-vars: no variable '{name}'", span,
                           (f"did you mean '{close[0]}'? " if close else "")
                           + f"the variables: {', '.join(by_name)}")
        var = by_name[name]
        size = int(var.size)
        if lo is None and size > MAX_TRACED:
            raise CfcError(ErrorKind.ARGUMENT, f"--trace-vars: '{name}' has {size} elements, "
                           f"more than {MAX_TRACED} columns", span,
                           f"give an index range, e.g. --trace-vars '{name}[0:100]'")
        start, stop = (0, size) if lo is None else (lo, size if hi is None else hi)
        if not 0 <= start < stop <= size:
            raise CfcError(ErrorKind.ARGUMENT, f"--trace-vars: range [{start}:{stop}] is "
                           f"outside '{name}' ({size} elements)", span,
                           f"use indices in 0..{size} (flat, row-major)")
        if stop - start > MAX_TRACED:
            raise CfcError(ErrorKind.ARGUMENT, f"--trace-vars: '{item}' asks for "
                           f"{stop - start} columns, more than {MAX_TRACED}", span,
                           "trace a shorter range")
        flat = tuple(int(var.offset) + k for k in range(start, stop))
        out.append(TraceVar(name, flat, tuple(var.element(k) for k in flat)))
    return tuple(out)


def split_items(spec: str) -> list[str]:
    """Split at commas outside brackets: 'x[1,2],eta' -> ['x[1,2]', 'eta']."""
    items, depth, current = [], 0, ""
    for ch in spec:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += ch
    items.append(current.strip())
    return [i for i in items if i]


def parse_item(item: str, span: Span | None, flag: str) -> tuple[str, int | None, int | None]:
    """'eta' -> (eta, None, None); 'eta[3]' -> (eta, 3, 4); 'eta[2:5]' -> (eta, 2, 5);
    'eta[2:]' -> (eta, 2, None). Indices are flat (row-major) element numbers."""
    name, bracket, rest = item.partition("[")
    name = name.strip()
    if not bracket:
        return name, None, None
    inner = rest[:-1] if rest.endswith("]") else None
    try:
        if inner is None:
            raise ValueError
        if ":" in inner:
            a, _, b = inner.partition(":")
            return name, int(a) if a.strip() else 0, int(b) if b.strip() else None
        k = int(inner)
        return name, k, k + 1
    except ValueError:
        raise CfcError(ErrorKind.ARGUMENT, f"{flag}: cannot read '{item}'", span,
                       "write NAME, NAME[K] or NAME[A:B] (flat indices, B excluded)") from None


def variable_spans(layout: Sequence[Any]) -> tuple[VariableSpan, ...]:
    """The spans of a bound model's variables (`BoundModel.layout`), for `Observe`."""
    return tuple(VariableSpan(v.name, int(v.offset), int(v.size)) for v in layout)
