"""The panels of a trace figure, each with the columns it needs, and the table they read.

A panel is drawn when a trace has its columns, so a trace with more columns (per-family
gradient norms, wall time, homotopy stages) gains panels without a flag. `plots.py` lays the
panels out and saves the figure; the step axis is shared by every panel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.runtime.figures.palette import INK, PALETTE
from cfc_dsl.runtime.observe.trace import delta_f90

STEP_COLUMNS = ("step_size", "step_length")  # drawn solid, then dashed
WALL_COLUMNS = ("wall_time", "wall_s", "time_s", "seconds")  # seconds spent on each step


@dataclass(frozen=True)
class Table:
    """One trace or sweep table as read from its file; `label` is the file stem."""

    label: str
    source: str
    frame: pl.DataFrame

    def require(self, *columns: str) -> None:
        for name in columns:
            if name not in self.frame.columns:
                raise CfcError(ErrorKind.DATA, f"'{self.source}' has no column '{name}'", None,
                               f"its columns are: {', '.join(self.frame.columns)}")

    def column(self, name: str) -> np.ndarray:
        self.require(name)
        series = self.frame[name]
        if not series.dtype.is_numeric() and series.dtype != pl.Boolean:
            raise CfcError(ErrorKind.DATA, f"column '{name}' of '{self.source}' is not numeric "
                           f"({series.dtype})", None, "plot a numeric column")
        return series.cast(pl.Float64).to_numpy()

    def has(self, name: str) -> bool:
        return name in self.frame.columns

    def families(self, kind: str) -> dict[str, str]:
        """Family name -> column for per-family columns `kind.FAMILY` (or `kind_FAMILY`)."""
        out: dict[str, str] = {}
        for name in self.frame.columns:
            for prefix in (f"{kind}.", f"{kind}_"):
                if name.startswith(prefix) and len(name) > len(prefix):
                    out.setdefault(name[len(prefix):], name)
        return out

    def accepted(self) -> np.ndarray:
        if not self.has("accepted"):
            return np.ones(self.frame.height, dtype=bool)
        return self.column("accepted") > 0.5


def colours(n: int) -> list[str]:
    return [PALETTE[k % len(PALETTE)] for k in range(n)]


def positive(values: np.ndarray) -> np.ndarray:
    """Values for a log axis: zeros and negatives become gaps in the line."""
    return np.where(values > 0, values, np.nan)


def family_colour(trace: Table, family: str) -> str:
    """The same family gets the same colour in every panel (and in `cfc graph`)."""
    names = list(trace.families("energy"))
    names += [f for f in trace.families("grad_norm") if f not in names]
    return PALETTE[names.index(family) % len(PALETTE)]


Draw = Callable[[Axes, Sequence[Table], Sequence[str]], None]


@dataclass(frozen=True)
class Panel:
    name: str
    draw: Draw
    present: Callable[[Table], bool]
    per_trace: bool = False  # one axis per trace, or one line per trace on shared axes


def draw_gap(ax: Axes, traces: Sequence[Table], ink: Sequence[str]) -> None:
    """F_t - F_final over the accepted steps, on a log scale, with ΔF90 marked."""
    for trace, colour in zip(traces, ink, strict=True):
        keep = trace.accepted()
        steps, energy = trace.column("step"), trace.column("energy")
        final = energy[keep][-1]
        k = delta_f90(list(energy[keep]))
        at = steps[keep][k]
        label = f"{trace.label} (ΔF$_{{90}}$ = {k})" if len(traces) > 1 else trace.label
        ax.plot(steps[keep], positive(energy[keep] - final), color=colour, label=label,
                gid=f"gap:{trace.label}")
        if (~keep).any():
            ax.plot(steps[~keep], positive(energy[~keep] - final), ls="none", marker="x",
                    ms=2.5, mew=0.6, color=colour, alpha=0.6, gid=f"rejected:{trace.label}")
        ax.axvline(at, color=colour, ls=":", lw=0.8, gid=f"df90:{trace.label}")
        if len(traces) == 1:
            ax.annotate(f" ΔF$_{{90}}$ = {k}", xy=(at, 1.0), xycoords=("data", "axes fraction"),
                        va="top", ha="left", color=colour)
    log_axis(ax)
    ax.set_ylabel("F − F$_{final}$")
    if len(traces) > 1:
        ax.legend(loc="upper right")


def draw_families(ax: Axes, traces: Sequence[Table], ink: Sequence[str]) -> None:
    """Each family's weighted energy as its change since step 0, stacked: gains above zero,
    drops below, so the stack's net height is F_t - F_0 (drawn as a line) and the areas say
    which families drove the energy down. A constant offset (often most of F) tells nothing
    about the relaxation and would flatten every other family, so it is taken out."""
    (trace,) = traces
    steps = trace.column("step")
    names, values = changing_families(trace)
    fills = [family_colour(trace, f) for f in names]
    for sign, part in ((1, np.clip(values, 0, None)), (-1, np.clip(values, None, 0))):
        if np.any(part != 0):
            ax.stackplot(steps, part, colors=fills, lw=0, alpha=0.85,
                         gid=f"stack{'+' if sign > 0 else '-'}:{trace.label}")
    energy = trace.column("energy")
    ax.plot(steps, energy - energy[0], color=INK, lw=0.9, label="total",
            gid=f"total:{trace.label}")
    ax.axhline(0, color=INK, lw=0.4)
    ax.set_ylabel("F$_{family}$ − F$_{family,0}$")


def changing_families(trace: Table) -> tuple[list[str], np.ndarray]:
    """The families whose energy changes, and their changes since step 0 (one row each)."""
    names, rows = [], []
    for family, column in trace.families("energy").items():
        change = trace.column(column) - trace.column(column)[0]
        if np.any(change != 0):
            names.append(family)
            rows.append(change)
    return names, np.array(rows).reshape(len(names), trace.frame.height)


def family_legend(traces: Sequence[Table]) -> tuple[list[Artist], list[str]]:
    """One key for the per-family panels of every trace: a family keeps its colour."""
    handles: list[Artist] = []
    labels: list[str] = []
    constant: list[str] = []
    for trace in traces:
        changing = changing_families(trace)[0]
        for family in [*trace.families("energy"), *trace.families("grad_norm")]:
            if family in labels or family in constant:
                continue
            if family in changing or family not in trace.families("energy"):
                handles.append(Patch(color=family_colour(trace, family), lw=0))
                labels.append(family)
            else:
                constant.append(family)
    handles.append(Line2D([], [], color=INK, lw=0.9))
    labels.append("total")
    if constant:  # no area to show; say so rather than drop the family silently
        handles.append(Patch(color="none"))
        labels.append("constant: " + ", ".join(constant))
    return handles, labels


def draw_family_grads(ax: Axes, traces: Sequence[Table], ink: Sequence[str]) -> None:
    (trace,) = traces
    steps = trace.column("step")
    for family, column in trace.families("grad_norm").items():
        ax.plot(steps, positive(trace.column(column)), color=family_colour(trace, family),
                label=family, gid=f"grad_norm.{family}:{trace.label}")
    log_axis(ax)
    ax.set_ylabel("‖∇F$_{family}$‖")


def _shared(columns: tuple[str, ...], label: str, cumulative: bool = False) -> Draw:
    """One line per trace of the first present of `columns` (a second one dashed, for
    step size and step length); `cumulative` sums one per-step column (wall time)."""
    def draw(ax: Axes, traces: Sequence[Table], ink: Sequence[str]) -> None:
        named = False
        for trace, colour in zip(traces, ink, strict=True):
            names = [c for c in columns if trace.has(c)][:1 if cumulative else 2]
            named = named or len(names) > 1
            for style, name in zip(("-", "--"), names, strict=False):
                y = trace.column(name)
                ax.plot(trace.column("step"), np.cumsum(y) if cumulative else positive(y),
                        color=colour, ls=style, label=name, gid=f"{name}:{trace.label}")
        if not cumulative:
            log_axis(ax)
        ax.set_ylabel(label)
        if named and len(traces) == 1:
            ax.legend(loc="best")
    return draw


def log_axis(ax: Axes) -> None:
    """A log y axis; within about a decade, plain ticks at 1-2-5 instead of 2×10⁰."""
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    if low > 0 and high / low < 30:
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(NullFormatter())


def shade_stages(ax: Axes, trace: Table, label: bool) -> None:
    """Alternate homotopy stages shaded grey; their values written above the top panel."""
    steps = trace.column("step")
    stages = trace.frame["stage"].to_list()
    starts = [i for i in range(len(stages)) if i == 0 or stages[i] != stages[i - 1]]
    for r, i in enumerate(starts):
        end = steps[starts[r + 1]] if r + 1 < len(starts) else steps[-1]
        if r % 2:
            ax.axvspan(steps[i], end, color=INK, alpha=0.08, lw=0, zorder=0,
                       gid=f"stage:{stages[i]}")
        if label:
            ax.text((steps[i] + end) / 2, 1.0, f"stage {stages[i]}" if r == 0 else str(stages[i]), ha="center", va="bottom",
                    transform=ax.get_xaxis_transform(), fontsize=5.5, color=INK)


PANELS = (
    Panel("gap", draw_gap, lambda t: True),
    Panel("families", draw_families, lambda t: bool(t.families("energy")), per_trace=True),
    Panel("grad", _shared(("grad_norm",), "projected ‖∇F‖$_∞$"), lambda t: t.has("grad_norm")),
    Panel("family_grads", draw_family_grads, lambda t: bool(t.families("grad_norm")),
          per_trace=True),
    Panel("step", _shared(STEP_COLUMNS, "step size"), lambda t: any(map(t.has, STEP_COLUMNS))),
    Panel("wall", _shared(WALL_COLUMNS, "wall time [s]", cumulative=True),
          lambda t: any(map(t.has, WALL_COLUMNS))),
)
