"""One sweep point, as a worker runs it: compile from source, bind, relax, make the row.

A task carries the model's source text and its data arrays, never a compiled module or a
path, so it runs on any worker that has cfc installed. Each worker process compiles a source
once (the kernel cache, keyed by content, makes that a lookup after the first build) and
reuses it for every later point. A failure becomes a row whose `error` holds the message.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from cfc_dsl.diagnostics import CfcError
from cfc_dsl.runtime.sweep.grid import STATISTICS


@dataclass(frozen=True)
class Relax:
    """How every point is compiled and relaxed."""

    solver: str = "auto"
    max_steps: int = 1000
    tol: float = 1e-8
    backend: str = "auto"


@dataclass(frozen=True)
class PointTask:
    source: str
    name: str  # what error messages call the source (the model file's path)
    relax: Relax
    settings: tuple[tuple[str, float], ...]  # fixed --set values, then the point's values
    data: tuple[tuple[str, np.ndarray], ...]
    observe: tuple[tuple[str, str], ...]  # (variable, statistic)
    values: tuple[tuple[str, float], ...]
    seed: int
    error: str | None = None  # set on the client (e.g. a missing data file): nothing to run


_COMPILED: dict[tuple[str, str], Any] = {}  # per process: (source sha256, backend) -> model


def source_sha256(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def compiled_model(source: str, name: str, backend: str) -> Any:
    """The compiled model for this source, built at most once per process."""
    from cfc_dsl.frontend import load_source
    from cfc_dsl.model import Target
    from cfc_dsl.runtime.backends.native import BackendKind
    from cfc_dsl.runtime.problem import compile_model

    key = (source_sha256(source), backend)
    if key not in _COMPILED:
        _COMPILED[key] = compile_model(load_source(source, name), Target.C, BackendKind(backend))
    return _COMPILED[key]


def base_row(task: PointTask) -> dict[str, Any]:
    return {**dict(task.values), "seed": task.seed}


def error_row(task: PointTask, message: str, seconds: float = 0.0) -> dict[str, Any]:
    return {**base_row(task), "wall_s": seconds, "error": message}


def describe(exc: BaseException) -> str:
    """The full message: a CfcError as the CLI prints it, anything else with its type."""
    return str(exc) if isinstance(exc, CfcError) else f"{type(exc).__name__}: {exc}"


def run_point(task: PointTask) -> dict[str, Any]:
    """Relax one point; the row has the point, seed, energies, stop reason, ΔF90, wall time,
    the observed statistics and `error` (None when it ran)."""
    if task.error is not None:
        return error_row(task, task.error)
    from cfc_dsl.runtime.bind.inputs import Setting

    start = time.perf_counter()
    try:
        compiled = compiled_model(task.source, task.name, task.relax.backend)
        start = time.perf_counter()  # wall time of the point: bind and relax, not the build
        problem = compiled.bind(settings=tuple(Setting(k, v) for k, v in task.settings),
                                data=dict(task.data), threads=1)  # workers share the cores
        result = problem.relax(solver=task.relax.solver, max_steps=task.relax.max_steps,
                               tol=task.relax.tol)
        values = result.values
        row = {**base_row(task), "energy": result.energy,
               "energy_initial": result.energy_initial,
               **{f"family.{k}": v for k, v in result.families.items()},
               "reason": result.reason, "steps": result.steps, "delta_f90": result.delta_f90}
        for var, stat in task.observe:
            row[f"{var}:{stat}"] = float(STATISTICS[stat](np.asarray(values[var])))
    except Exception as exc:  # a failed point is a row, not a failed sweep
        return error_row(task, describe(exc), time.perf_counter() - start)
    row["wall_s"] = time.perf_counter() - start
    row["error"] = None
    return row
