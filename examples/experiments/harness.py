"""What the research-note experiments share: the `--out`/`--quick` command line, writing a
table as CSV and Parquet (polars), drawing a figure with cfc's plot style, and the research
code's own ΔF90 (SEED_SPEC 5.4) beside cfc's (DESIGN 5). Each experiment script imports
this module from its own folder; the tests put that folder on `sys.path`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cfc_dsl.runtime.observe import plots

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent


def arguments(name: str, doc: str, argv: Sequence[str] | None,
              extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """`--out DIR` (default out/experiments/NAME) and `--quick` (the tests' reduced size)."""
    parser = argparse.ArgumentParser(prog=f"{name}.py", description=doc.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/experiments") / name,
                        help=f"folder for the table and figure (default out/experiments/{name})")
    parser.add_argument("--quick", action="store_true", help="a reduced size (the tests use it)")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(list(argv) if argv is not None else None)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def write_table(frame: pl.DataFrame, out: Path, name: str) -> Path:
    """`name.csv` and `name.parquet` under `out`; returns the CSV's path."""
    frame.write_parquet(out / f"{name}.parquet")
    path = out / f"{name}.csv"
    frame.write_csv(path, float_precision=12)
    return path


def new_figure(rows: int = 1, cols: int = 1, width: float = plots.Width.SINGLE.value,
               height: float | None = None) -> tuple[Figure, Any]:
    """A figure in cfc's plot style (Agg, no pyplot) and its axes."""
    with matplotlib.rc_context(plots.STYLE):
        figure = Figure(figsize=(width, height or width * 0.72 * rows), dpi=plots.DPI,
                        layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(rows, cols, squeeze=False)
    return figure, axes


def save(figure: Figure, out: Path, name: str) -> Path:
    path = out / f"{name}.png"
    plots.save_figure(figure, path, "png")
    return path


def research_delta_f90(energies: Sequence[float]) -> int:
    """SEED_SPEC 5.4 verbatim: over the energies E_1..E_n a run emitted, the first 1-based k
    with E_k <= E_1 - 0.9 (E_1 - min E); n when n < 2 or nothing dropped."""
    n = len(energies)
    if n < 2:
        return n
    drop = energies[0] - min(energies)
    if drop <= 0:
        return n
    threshold = energies[0] - 0.9 * drop
    return next(k for k, e in enumerate(energies, start=1) if e <= threshold)


def accepted_energies(relaxation: Any) -> list[float]:
    """The energies of a relaxation's accepted trace rows, step 0 (the start) first; for a
    homotopy or adapter run, each later round's start row (a re-weighting) is left out."""
    result = relaxation.result
    starts = getattr(result, "round_starts", frozenset())
    return [r.energy for i, r in enumerate(result.trace.records)
            if r.accepted and i not in starts]


def evaluations(relaxation: Any) -> int:
    """Energy evaluations over the whole run (the trace's `evaluations` column)."""
    return int(sum(r.evaluations for r in relaxation.result.trace.records))
