"""The sweep's table: rows to a polars DataFrame with fixed columns, and Parquet with the
sweep's provenance (cfc version, source sha256, grid, seeds, settings) in the file's
key-value metadata under `cfc.sweep`, so a result file says how it was made.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from cfc_dsl.diagnostics import CfcError, ErrorKind

METADATA_KEY = b"cfc.sweep"
_RESULT = {"energy": pl.Float64, "energy_initial": pl.Float64}
_STOP = {"reason": pl.String, "steps": pl.Int64, "delta_f90": pl.Int64}


def schema(axes: Sequence[str], families: Sequence[str],
           observed: Sequence[str]) -> dict[str, Any]:
    """Column -> dtype, in the table's order."""
    return {**{a: pl.Float64 for a in axes}, "seed": pl.Int64, **_RESULT,
            **{f"family.{f}": pl.Float64 for f in families}, **_STOP, "wall_s": pl.Float64,
            **{c: pl.Float64 for c in observed}, "error": pl.String}


def frame(rows: Sequence[dict[str, Any]], columns: dict[str, Any],
          axes: Sequence[str]) -> pl.DataFrame:
    """The rows as a DataFrame with exactly `columns` (a failed point's are null), sorted by
    the point and seed so the table does not depend on which worker finished first."""
    data = {name: [row.get(name) for row in rows] for name in columns}
    return pl.DataFrame(data, schema=columns).sort([*axes, "seed"], maintain_order=True)


def write(df: pl.DataFrame, path: Path, provenance: dict[str, Any]) -> None:
    """Write Parquet atomically, with the provenance as JSON in the key-value metadata."""
    import pyarrow.parquet as pq

    from cfc_dsl.runtime.outputs import write_output

    table = df.to_arrow()
    meta = dict(table.schema.metadata or {})
    meta[METADATA_KEY] = json.dumps(provenance, sort_keys=True).encode("utf-8")
    table = table.replace_schema_metadata(meta)
    write_output(path, lambda tmp: pq.write_table(table, tmp), "-o")


def read(path: Path) -> tuple[pl.DataFrame, dict[str, Any]]:
    """A sweep file's rows and provenance ({} when the file has none)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:  # pyarrow's errors subclass these
        raise CfcError(ErrorKind.DATA, f"cannot read the sweep file '{path}': {exc}", None,
                       "resume only into a Parquet file written by cfc sweep, or choose a "
                       "new output name") from None
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    provenance = json.loads(raw) if raw else {}
    return pl.from_arrow(table), provenance  # type: ignore[return-value]
