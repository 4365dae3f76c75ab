"""Plots of relaxation traces and sweep tables, drawn with matplotlib (Agg, never pyplot).

`trace_figure` draws one or several traces (`cfc run --trace`) as panels that exist only when
their columns do; `sweep_figure` draws a sweep table as mean and min-max band over seeds;
`save_figure` writes PNG, PDF or SVG with fixed metadata, so the same table gives the same
bytes. Only `cfc plot` imports this module: a plain run never loads matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.runtime.figures.palette import INK
from cfc_dsl.runtime.observe import panels
from cfc_dsl.runtime.observe.panels import Panel, Table, colours
from cfc_dsl.runtime.observe.trace import delta_f90
from cfc_dsl.version import __version__

FORMATS = ("png", "pdf", "svg")
DPI = 300
PANEL_HEIGHT = 1.1  # inches per row of panels
TABLE_SUFFIXES = (".csv", ".parquet")
# A paper's text at 9-10 pt wants figure text near 7 pt; DejaVu ships with matplotlib, so
# the glyphs (and the bytes) do not depend on the fonts a machine happens to have.
STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans", "font.size": 7, "axes.labelsize": 7, "axes.titlesize": 7,
    "xtick.labelsize": 6, "ytick.labelsize": 6, "legend.fontsize": 6, "lines.linewidth": 1.0,
    "axes.linewidth": 0.6, "xtick.major.width": 0.6, "ytick.major.width": 0.6,
    "xtick.minor.width": 0.4, "ytick.minor.width": 0.4, "xtick.major.size": 2.5,
    "ytick.major.size": 2.5, "xtick.minor.size": 1.5, "ytick.minor.size": 1.5,
    "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False,
    "legend.handlelength": 1.4, "legend.columnspacing": 1.0, "axes.labelpad": 2.0,
    "axes.edgecolor": INK, "text.color": INK, "axes.labelcolor": INK, "xtick.color": INK,
    "ytick.color": INK, "mathtext.default": "regular", "svg.hashsalt": "cfc",
    "svg.fonttype": "path", "pdf.fonttype": 42, "path.simplify": False,
}


class Width(Enum):
    """Figure widths in inches: one column or the full text width of a two-column paper."""

    SINGLE = 3.3
    DOUBLE = 7.0


def read_table(path: Path) -> Table:
    """A trace or sweep table from CSV or Parquet, or a CfcError naming the file."""
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise CfcError(ErrorKind.ARGUMENT, f"cannot read a table from '{path}'", None,
                       "give a .csv or .parquet file, e.g. from 'cfc run --trace trace.csv'")
    if not path.is_file():
        raise CfcError(ErrorKind.ARGUMENT, f"no such file '{path}'", None,
                       "write a trace first: cfc run MODEL.cfc --trace trace.csv")
    try:
        frame = (pl.read_csv(path, try_parse_dates=False) if path.suffix.lower() == ".csv"
                 else pl.read_parquet(path))
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise CfcError(ErrorKind.DATA, f"cannot read '{path}': {exc}", None,
                       "give a CSV or Parquet table with a header row") from None
    if frame.height == 0:
        raise CfcError(ErrorKind.DATA, f"'{path}' has no rows", None,
                       "plot a trace of at least one step")
    return Table(path.stem, str(path), frame)


def figure_format(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise CfcError(ErrorKind.ARGUMENT, f"cannot draw a plot as '{path.suffix or path.name}'",
                       None, "name a .png, .pdf or .svg file, e.g. -o trace.png")
    return fmt


@contextmanager
def _style():  # type: ignore[no-untyped-def]
    with matplotlib.rc_context(STYLE):
        yield


def save_figure(figure: Figure, path: Path, fmt: str) -> None:
    """Write `figure`; no dates and a fixed creator, so the bytes depend on the data only."""
    software = f"cfc {__version__}"
    metadata = {"png": {"Software": software},
                "svg": {"Date": None, "Creator": software},
                "pdf": {"CreationDate": None, "ModDate": None, "Creator": software,
                        "Producer": software}}[fmt]
    with _style():
        figure.savefig(path, format=fmt, dpi=DPI, metadata=metadata)


def trace_figure(traces: Sequence[Table], width: Width = Width.SINGLE) -> Figure:
    """One figure for one or several traces. Solvers compared share the scalar panels, one
    colour and one line per trace; per-family panels get one axis per trace, below them."""
    for trace in traces:
        trace.require("step", "energy")
    chosen = [p for p in panels.PANELS if any(p.present(t) for t in traces)]
    if len(traces) > 1:  # shared panels on top, on one step axis; each trace's own below
        chosen = [p for p in chosen if not p.per_trace] + [p for p in chosen if p.per_trace]
    mosaic, group = _mosaic(chosen, traces, 1 if width is Width.SINGLE else 2)
    below = _below(mosaic, group)
    ink = colours(len(traces)) if len(traces) > 1 else [INK]
    with _style():
        figure = Figure(figsize=(width.value, PANEL_HEIGHT * len(mosaic) + 0.2), dpi=DPI,
                        layout=ConstrainedLayoutEngine(h_pad=0.02, w_pad=0.02, hspace=0.04,
                                                       wspace=0.04))
        FigureCanvasAgg(figure)
        axes = figure.subplot_mosaic(mosaic, empty_sentinel=".")  # type: ignore[arg-type]
        first: dict[str, Any] = {}
        for key, ax in axes.items():
            panel = next(p for p in chosen if key.partition(":")[0] == p.name)
            if group[key] in first:
                ax.sharex(axes[first[group[key]]])
            else:
                first[group[key]] = key
            j = int(key.partition(":")[2] or 0)
            mine = [traces[j]] if panel.per_trace else list(traces)
            panel.draw(ax, mine, [ink[j]] if panel.per_trace else ink)
            if panel.per_trace and len(traces) > 1 and first[group[key]] == key:
                ax.set_title(traces[j].label, color=ink[j], loc="left", pad=2)
            staged = next((t for t in mine if t.has("stage")), None)
            if staged is not None:
                # on shared axes of several traces, stage names would sit over the others
                panels.shade_stages(ax, staged, label=first[group[key]] == key and (
                    group[key] != "shared" or len(traces) == 1))
            if below[key]:
                ax.tick_params(labelbottom=False)
            else:
                ax.set_xlabel("step")
            ax.margins(x=0.01)
        if any(p.per_trace for p in chosen):
            handles, labels = panels.family_legend(traces)
            figure.legend(handles, labels, loc="outside lower center", handlelength=1.0,
                          ncols=min(len(labels), 4 if width is Width.SINGLE else 8))
    return figure


def _mosaic(chosen: Sequence[Panel], traces: Sequence[Table],
            ncols: int) -> tuple[list[list[str]], dict[str, str]]:
    """Rows of axis keys (a key repeated spans cells), and each key's step-axis group:
    every shared panel is on one axis, a trace's own panels on another."""
    k = len(traces)
    cells: list[tuple[str, int, str]] = []  # (key, cells wide, group) in reading order
    for panel in chosen:
        if panel.per_trace and k > 1:
            cells += [(f"{panel.name}:{j}", ncols, f"trace {j}") for j in range(k)
                      if panel.present(traces[j])]
        else:
            cells.append((f"{panel.name}:0" if panel.per_trace else panel.name, k, "shared"))
    total = ncols * k
    rows: list[list[str]] = []
    for key, span, _ in cells:
        if not rows or len(rows[-1]) + span > total:
            rows.append([])
        rows[-1] += [key] * span
    rows = [row + ["."] * (total - len(row)) for row in rows]
    return rows, {key: g for key, _, g in cells}


def _below(rows: list[list[str]], group: dict[str, str]) -> dict[str, bool]:
    """Whether a panel of the same step axis sits below a key; then its step labels would
    only repeat those below."""
    out: dict[str, bool] = {}
    for r, row in enumerate(rows):
        for c, key in enumerate(row):
            if key != ".":
                out[key] = out.get(key, False) or any(
                    rows[s][c] not in (".", key) and group[rows[s][c]] == group[key]
                    for s in range(r + 1, len(rows)))
    return out


def sweep_figure(tables: Sequence[Table], x: str, y: str = "energy", hue: str | None = None,
                 width: Width = Width.SINGLE) -> Figure:
    """y against x, one line per hue value (or per table), mean with a min-max band over the
    rows that share x and hue (the seeds of a sweep)."""
    for table in tables:
        table.require(x, y, *([hue] if hue else []))
    groups: list[tuple[str, np.ndarray, np.ndarray]] = []
    for table in tables:
        xs, ys = table.column(x), table.column(y)
        keys = table.frame[hue].to_list() if hue else [None] * len(xs)
        for value in sorted(set(keys), key=lambda v: (v is None, str(type(v)), v)):
            pick = np.array([kv == value for kv in keys])
            name = str(value) if hue else table.label
            if hue and len(tables) > 1:
                name = f"{table.label}: {name}"
            groups.append((name, xs[pick], ys[pick]))
    height = width.value * (0.72 if width is Width.SINGLE else 0.42)
    with _style():
        figure = Figure(figsize=(width.value, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        ax = figure.add_subplot()
        for colour, (name, xs, ys) in zip(colours(len(groups)), groups, strict=True):
            grid = np.unique(xs[np.isfinite(xs)])
            stats = np.array([_spread(ys[xs == v]) for v in grid]).reshape(-1, 3)
            ax.fill_between(grid, stats[:, 1], stats[:, 2], color=colour, alpha=0.22, lw=0,
                            gid=f"band:{name}")
            ax.plot(grid, stats[:, 0], color=colour, marker="o", ms=2.5, label=name,
                    gid=f"mean:{name}")
        every_x = np.concatenate([g[1] for g in groups])
        if _wide_positive(every_x):
            ax.set_xscale("log")
        if _wide_positive(np.concatenate([g[2] for g in groups]), 1e3):
            ax.set_yscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel(f"{y} (mean, min-max)")
        if len(groups) > 1:
            ax.legend(loc="best", title=hue)
    return figure


def _spread(values: np.ndarray) -> tuple[float, float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (np.nan, np.nan, np.nan)
    return (float(finite.mean()), float(finite.min()), float(finite.max()))


def _wide_positive(values: np.ndarray, ratio: float = 30.0) -> bool:
    finite = values[np.isfinite(values)]
    return bool(finite.size and finite.min() > 0 and finite.max() / finite.min() >= ratio)


def describe(traces: Sequence[Table]) -> str:
    """One line for the CLI: what the figure shows."""
    parts = []
    for t in traces:
        energies = t.column("energy")[t.accepted()]
        steps = int(np.nanmax(t.column("step")))
        parts.append(f"{t.label}: {steps} steps, ΔF90 {delta_f90(list(energies))}")
    return "; ".join(parts)
