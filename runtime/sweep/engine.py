"""The sweep engine: compile once on the client, run every point as a Dask task, gather rows.

By default the points run on a `LocalCluster` of single-threaded process workers; given a
scheduler address they run on that cluster; with `workers=0` they run here, one after the
other. Data are read (and `{seed}` substituted into their paths) on the client and shipped
as arrays. `resume` keeps the finished rows of an earlier run of the same source; Ctrl-C
writes the rows finished so far and raises `SweepInterrupted`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.model import Model
from cfc_dsl.runtime.sweep import table
from cfc_dsl.runtime.sweep.grid import Axis, Observation, Point, check_names, points
from cfc_dsl.runtime.sweep.task import (
    PointTask,
    Relax,
    compiled_model,
    describe,
    run_point,
    source_sha256,
)

DataValue = np.ndarray | str | Path | Callable[[int], np.ndarray]
Progress = Callable[[int, int, int], None]  # (finished, total, failed)


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep; `frame` holds the rows finished (and written) before it."""

    def __init__(self, frame: pl.DataFrame):
        super().__init__(f"sweep interrupted after {len(frame)} rows")
        self.frame = frame


@dataclass(frozen=True)
class Sweep:
    """Everything that decides a sweep's rows (the provenance records all of it)."""

    model: Model
    axes: tuple[Axis, ...]
    seeds: tuple[int, ...]
    relax: Relax = Relax()
    settings: tuple[tuple[str, float], ...] = ()
    data: tuple[tuple[str, DataValue], ...] = ()
    observe: tuple[Observation, ...] = ()
    _loaded: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    @property
    def source(self) -> str:
        return self.model.source.text

    def provenance(self) -> dict[str, Any]:
        from cfc_dsl.version import __version__

        return {"cfc_version": __version__, "model": self.model.name,
                "source": self.model.source.name, "source_sha256": source_sha256(self.source),
                "grid": {a.name: list(a.values) for a in self.axes}, "seeds": list(self.seeds),
                "settings": dict(self.settings), "solver": self.relax.solver,
                "max_steps": self.relax.max_steps, "tol": self.relax.tol,
                "backend": self.relax.backend, "observe": [o.column for o in self.observe],
                "data": {k: (str(v) if isinstance(v, str | Path) else type(v).__name__)
                         for k, v in self.data}}

    def columns(self) -> dict[str, Any]:
        return table.schema([a.name for a in self.axes], [f.name for f in self.model.families],
                            [o.column for o in self.observe])

    def task(self, point: Point) -> PointTask:
        error = None
        try:
            data = tuple((name, self._array(name, value, point.seed)) for name, value in self.data)
        except CfcError as exc:  # e.g. no data file for this seed: that point fails alone
            data, error = (), describe(exc)
        return PointTask(self.source, self.model.source.name, self.relax,
                         self.settings + point.values, data,
                         tuple((o.variable, o.statistic) for o in self.observe), point.values,
                         point.seed, error)

    def _array(self, name: str, value: DataValue, seed: int) -> np.ndarray:
        if isinstance(value, np.ndarray):
            return value
        if callable(value):
            return np.asarray(value(seed))
        from cfc_dsl.runtime.bind.data import load_array

        path = str(value).replace("{seed}", str(seed))
        if path not in self._loaded:
            spec = next((d for d in self.model.data if d.name == name), None)
            if spec is None:
                from cfc_dsl.diagnostics import did_you_mean

                raise CfcError(ErrorKind.ARGUMENT, f"unknown data name '{name}'", None,
                               did_you_mean(name, {d.name for d in self.model.data}))
            self._loaded[path] = load_array(Path(path), spec)
        return self._loaded[path]


def run(sweep: Sweep, *, workers: int = 2, scheduler: str | None = None,
        output: Path | None = None, resume: bool = False,
        progress: Progress | None = None) -> pl.DataFrame:
    """Run every point of `sweep` not already finished in `output`; returns all rows."""
    check_names(sweep.model, sweep.axes, sweep.observe, (k for k, _ in sweep.settings))
    compiled_model(sweep.source, sweep.model.source.name, sweep.relax.backend)  # fail fast
    columns, axes = sweep.columns(), [a.name for a in sweep.axes]
    kept = _resumed(sweep, output) if resume and output is not None and output.exists() else None
    done = {tuple(r[c] for c in [*axes, "seed"]) for r in kept.iter_rows(named=True)} \
        if kept is not None else set()
    todo = [p for p in points(sweep.axes, sweep.seeds) if p.key not in done]
    rows: list[dict[str, Any]] = [] if kept is None else kept.to_dicts()
    tasks = [sweep.task(p) for p in todo]
    try:
        _execute(tasks, rows, workers, scheduler, progress)
    except KeyboardInterrupt:
        result = table.frame(rows, columns, axes)
        if output is not None:
            table.write(result, output, sweep.provenance())
        raise SweepInterrupted(result) from None
    result = table.frame(rows, columns, axes)
    if output is not None:
        table.write(result, output, sweep.provenance())
    return result


def _resumed(sweep: Sweep, output: Path) -> pl.DataFrame:
    """The finished rows of an earlier run of this source; failed ones are run again."""
    old, provenance = table.read(output)
    if provenance.get("source_sha256") != source_sha256(sweep.source):
        raise CfcError(ErrorKind.ARGUMENT, f"cannot resume '{output}': it was written for "
                       "another model source (or not by cfc sweep)", None,
                       "choose a new output name, or drop --resume to start over")
    columns = sweep.columns()
    if set(old.columns) != set(columns):
        raise CfcError(ErrorKind.ARGUMENT, f"cannot resume '{output}': its columns differ "
                       "from this sweep's (other grid names or --observe)", None,
                       "choose a new output name, or drop --resume to start over")
    return old.filter(pl.col("error").is_null()).select(list(columns))


def _execute(tasks: Sequence[PointTask], rows: list[dict[str, Any]], workers: int,
             scheduler: str | None, progress: Progress | None) -> None:
    total, failed = len(tasks), 0

    def finished(row: dict[str, Any]) -> None:
        nonlocal failed
        rows.append(row)
        failed += row.get("error") is not None
        if progress is not None:
            progress(len(rows) - start, total, failed)

    start = len(rows)
    if not tasks:
        return
    if scheduler is None and workers == 0:
        for task in tasks:
            finished(run_point(task))
        return
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, processes=True, threads_per_worker=1,
                               dashboard_address=None, silence_logs=logging.ERROR)
    try:
        with Client(cluster if cluster is not None else scheduler, timeout=30) as client:
            futures = client.map(run_point, tasks, pure=False)
            index = {f.key: t for f, t in zip(futures, tasks, strict=True)}
            try:
                for future in as_completed(futures):
                    try:
                        finished(future.result())
                    except Exception as exc:  # the worker died (e.g. a crash in a kernel)
                        finished({**dict(index[future.key].values),
                                  "seed": index[future.key].seed, "error": describe(exc)})
            except KeyboardInterrupt:
                client.cancel(futures)
                raise
    except OSError as exc:
        raise CfcError(ErrorKind.ENVIRONMENT, f"cannot reach the Dask scheduler "
                       f"{scheduler or 'of the local cluster'}: {exc}", None,
                       "check the address (tcp://host:port) and that the scheduler runs") from None
    finally:
        if cluster is not None:
            cluster.close()


def make(model: Model, grid: Sequence[Axis] | Mapping[str, Any], seeds: Sequence[int],
         **options: Any) -> Sweep:
    """A `Sweep` from Python values: `grid` maps names to "-1:1:21", "64,256" or numbers."""
    axes = tuple(grid) if not isinstance(grid, Mapping) else tuple(
        Axis.of(k, v) for k, v in grid.items())
    return Sweep(model, axes, tuple(seeds), **options)
