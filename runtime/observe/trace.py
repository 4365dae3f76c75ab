"""The relaxation trace: a `Tracker` that keeps one row per `StepRecord`, as a polars
DataFrame with named columns, and ΔF90.

Records are kept as they come while a solver runs; the DataFrame is built on first use, so a
run that never asks for its trace never imports polars. Column names are a contract
(`docs/json.md`, `cfc plot`): see `columns`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.runtime.observe.records import StepRecord

BASE_COLUMNS = ("step", "energy", "grad_norm", "step_size", "backtracks", "accepted")
TIMING_COLUMNS = ("step_length", "wall_time", "evaluations")
INT_COLUMNS = ("step", "backtracks", "evaluations")


@dataclass
class Trace:
    """Columns, in order: BASE_COLUMNS, `energy_FAMILY` (weighted energy of each family),
    `step_length`, `wall_time`, `evaluations`, then those present in the records:
    `grad_norm.FAMILY`, `min.VAR` / `mean.VAR` / `max.VAR`, one column per traced element
    (`eta[3]`), the solver's extras (`margin`, ...). `weight.FAMILY` columns appear only
    when a family's weight changed during the run (homotopy, adapters)."""

    families: tuple[str, ...]
    extra: tuple[str, ...] = ()  # solver-specific columns, e.g. "margin"
    records: list[StepRecord] = field(default_factory=list)
    provenance: Mapping[str, Any] | None = None  # written into Parquet metadata

    # -- the Tracker protocol
    def on_step(self, record: StepRecord) -> None:
        self.records.append(record)

    def on_finish(self, result: Any) -> None:
        pass

    def add(self, step: int, energy: float, families: Any, grad_norm: float, step_size: float,
            backtracks: int, accepted: bool, *extra: float) -> None:
        """A row from positional values (kept for callers that build a trace by hand)."""
        self.on_step(StepRecord(step, float(energy), tuple(float(v) for v in families),
                                float(grad_norm), float(step_size), 0.0, int(backtracks),
                                bool(accepted), 0.0, 0,
                                extra=tuple(zip(self.extra, map(float, extra), strict=False))))

    @property
    def rows(self) -> list[StepRecord]:
        return self.records

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self._columns())

    @property
    def energies(self) -> list[float]:
        """Energy after each accepted step, starting with the initial state (step 0)."""
        return [r.energy for r in self.records if r.accepted]

    def _columns(self) -> dict[str, Any]:
        """Column name -> a function of a record giving its value."""
        cols: dict[str, Any] = {
            "step": lambda r: r.step, "energy": lambda r: r.energy,
            "grad_norm": lambda r: r.grad_norm, "step_size": lambda r: r.step_size,
            "backtracks": lambda r: r.backtracks, "accepted": lambda r: r.accepted}
        for i, f in enumerate(self.families):
            cols[f"energy_{f}"] = lambda r, i=i: r.families[i]
        cols["step_length"] = lambda r: r.step_length
        cols["wall_time"] = lambda r: r.wall_time
        cols["evaluations"] = lambda r: r.evaluations
        first = self.records[0] if self.records else None
        if any(r.family_grad_norms is not None for r in self.records):
            for i, f in enumerate(self.families):
                cols[f"grad_norm.{f}"] = lambda r, i=i: (
                    None if r.family_grad_norms is None else r.family_grad_norms[i])
        if first is not None:
            for k, v in enumerate(first.variables):
                for stat in ("min", "mean", "max"):
                    cols[f"{stat}.{v.name}"] = lambda r, k=k, s=stat: getattr(r.variables[k], s)
            for k, (name, _) in enumerate(first.values):  # `value.x` where x is taken
                cols[f"value.{name}" if name in cols else name] = lambda r, k=k: r.values[k][1]
        extras = list(self.extra)
        for r in self.records:
            extras += [k for k, _ in r.extra if k not in extras]
        for name in extras:
            if name.startswith("weight.") and len({dict(r.extra).get(name)
                                                   for r in self.records}) < 2:
                continue  # a weight that never changed tells nothing
            cols[name] = lambda r, n=name: dict(r.extra).get(n)
        return cols

    def frame(self):  # type: ignore[no-untyped-def]
        import polars as pl

        cols = self._columns()
        data = {c: [get(r) for r in self.records] for c, get in cols.items()}
        schema = {c: (pl.Int64 if c in INT_COLUMNS else pl.Boolean if c == "accepted"
                      else pl.Float64) for c in cols}
        return pl.DataFrame(data, schema=schema)

    def write(self, path: Path) -> None:
        """Write CSV or Parquet, chosen by the suffix; Parquet carries the provenance
        (JSON, key `cfc.provenance`) in its file metadata."""
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".parquet"):
            raise CfcError(ErrorKind.ARGUMENT, f"cannot write a trace to '{path}'", None,
                           "use a .csv or .parquet file name")
        frame = self.frame()
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".csv":
            frame.write_csv(path)
            return
        if self.provenance is None:
            frame.write_parquet(path)
            return
        import json

        import pyarrow.parquet as pq

        table = frame.to_arrow()
        meta = dict(table.schema.metadata or {})
        meta[b"cfc.provenance"] = json.dumps(self.provenance, sort_keys=True).encode()
        pq.write_table(table.replace_schema_metadata(meta), path)


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
