"""The relaxation trace: one row per step, as a polars DataFrame, and ΔF90.

Rows are collected as plain Python lists while a solver runs; the DataFrame is built on
first use, so a run that never asks for its trace never imports polars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfc_dsl.diagnostics import CfcError, ErrorKind

BASE_COLUMNS = ("step", "energy", "grad_norm", "step_size", "backtracks", "accepted")


@dataclass
class Trace:
    families: tuple[str, ...]
    extra: tuple[str, ...] = ()  # solver-specific columns, e.g. "margin"
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def add(self, step: int, energy: float, families: Any, grad_norm: float, step_size: float,
            backtracks: int, accepted: bool, *extra: float) -> None:
        self.rows.append((step, energy, grad_norm, step_size, backtracks, accepted,
                          *[float(v) for v in families], *extra))

    @property
    def columns(self) -> tuple[str, ...]:
        return BASE_COLUMNS + tuple(f"energy_{f}" for f in self.families) + self.extra

    @property
    def energies(self) -> list[float]:
        """Energy after each accepted step, starting with the initial state (step 0)."""
        return [r[1] for r in self.rows if r[5]]

    def frame(self):  # type: ignore[no-untyped-def]
        import polars as pl

        cols = self.columns
        data = {c: [r[i] for r in self.rows] for i, c in enumerate(cols)}
        schema = {c: (pl.Int64 if c in ("step", "backtracks") else pl.Boolean
                      if c == "accepted" else pl.Float64) for c in cols}
        return pl.DataFrame(data, schema=schema)

    def write(self, path: Path) -> None:
        """Write CSV or Parquet, chosen by the suffix."""
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".parquet"):
            raise CfcError(ErrorKind.ARGUMENT, f"cannot write a trace to '{path}'", None,
                           "use a .csv or .parquet file name")
        frame = self.frame()
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".csv":
            frame.write_csv(path)
        else:
            frame.write_parquet(path)


def delta_f90(energies: list[float]) -> int:
    """Accepted steps until F0 - F_t >= 0.9 (F0 - F_final); step 0 is the initial state."""
    if len(energies) < 2:
        return 0
    f0, final = energies[0], energies[-1]
    drop = f0 - final
    if drop <= 0:
        return 0
    for step, f in enumerate(energies):
        if f0 - f >= 0.9 * drop:
            return step
    return len(energies) - 1
