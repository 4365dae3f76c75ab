"""Landau sweep (SEED_SPEC 6.2): η_final against a, from η0 = 0.1 and η0 = 0.9 (b = 1).

One `cfc.sweep` over `landau.cfc` (a ∈ [−1, 1] in 21 points × η0 ∈ {0.1, 0.9}), each point
relaxed by Newton at a tight tolerance, against the closed form η* = √(−a/2b) for a < 0 and 0
otherwise. At a = 0 the well is the flat quartic b η⁴: a gradient test stops where 4bη³ ≤ tol,
so η_final is (tol/4b)^(1/3) there, not 0 — the table's `grad_final` column shows it.

    python examples/experiments/landau_sweep.py [--out DIR] [--quick] [--workers K]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from harness import HERE, arguments, save, write_table

import cfc_dsl as cfc
from cfc_dsl.runtime.observe.panels import Table
from cfc_dsl.runtime.observe.plots import sweep_figure

B = 1.0
TOL = 1e-12


def closed_form(a: np.ndarray, b: float = B) -> np.ndarray:
    """The minimiser of a η² + b η⁴ on [0, 1] (for b >= -a/2, so the root lies inside)."""
    return np.sqrt(np.maximum(-a, 0.0) / (2 * b))


def main(argv: Sequence[str] | None = None) -> pl.DataFrame:
    args = arguments("landau_sweep", __doc__ or "", argv, lambda p: p.add_argument(
        "--workers", type=int, default=None,
        help="Dask process workers (0: serially here; default 2, and 0 with --quick)"))
    workers = args.workers if args.workers is not None else (0 if args.quick else 2)
    points = 5 if args.quick else 21
    frame = cfc.sweep(HERE / "landau.cfc", {"a": f"-1:1:{points}", "eta0": [0.1, 0.9]},
                      seeds=1, settings={"b": B}, solver="newton", tol=TOL, max_steps=500,
                      observe=["eta:mean"], workers=workers)
    a = frame["a"].to_numpy()
    eta = frame["eta:mean"].to_numpy()
    star = closed_form(a)
    frame = frame.rename({"eta:mean": "eta_final"}).with_columns(
        pl.Series("eta_closed", star), pl.Series("error_eta", np.abs(eta - star)),
        pl.Series("energy_closed", -np.maximum(-a, 0) ** 2 / (4 * B)),
        pl.Series("grad_final", 2 * a * eta + 4 * B * eta**3),
    ).drop("wall_s").sort("eta0", "a")
    table = write_table(frame, args.out, "landau_sweep")

    figure = sweep_figure([Table("landau", str(table), frame)], x="a", y="eta_final", hue="eta0")
    ax = figure.axes[0]
    grid = np.linspace(-1, 1, 201)
    ax.plot(grid, closed_form(grid), color="black", lw=0.8, ls="--", label="√(−a/2b)")
    ax.set_ylabel("η_final")
    ax.legend(loc="upper right", title="η0", fontsize=6, title_fontsize=6)
    picture = save(figure, args.out, "landau_sweep")
    worst = frame.filter(pl.col("a") != 0)["error_eta"].max()
    print(f"max |η_final − √(−a/2b)| over a ≠ 0: {worst:.2e}; wrote {table} and {picture}")
    return frame


if __name__ == "__main__":
    main()
