"""Coordination above the solvers: continuation (`homotopy.py`) and term-weight adapters
(`adapters.py`) change a problem's effective family weights between warm-started rounds of
any registered solver (`rounds.py`), and always report the energy under the user's weights.
`relax` is what `Problem.relax` calls: it picks plain, homotopy or adapter runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.runtime.coordinate.adapters import ADAPTERS, adapt, adapter_names
from cfc_dsl.runtime.coordinate.homotopy import (
    HomotopyOptions,
    Schedule,
    Shape,
    continuation,
    model_schedules,
)
from cfc_dsl.runtime.coordinate.rounds import Coordination, Round


def schedules(problem: Any, homotopy: Any) -> list[Schedule]:
    """The schedules a run uses: None -> the model's; a string or Schedule, or a sequence
    of them ("chain=0.1:40" as on the command line)."""
    if homotopy is None:
        return model_schedules(problem)
    items: Sequence[Any] = [homotopy] if isinstance(homotopy, (str, Schedule)) else homotopy
    out = [h if isinstance(h, Schedule) else Schedule.parse(str(h)) for h in items]
    seen = [s.family for s in out]
    dup = next((f for f in seen if seen.count(f) > 1), None)
    if dup is not None:
        raise CfcError(ErrorKind.ARGUMENT, f"--homotopy: family '{dup}' has two schedules",
                       None, "give each family one schedule")
    return out


def relax(problem: Any, solver: str, x0: np.ndarray, options: Any, progress: Any,
          homotopy: Any = None, adapter: str | None = None, adapter_options: Any = None,
          homotopy_options: HomotopyOptions | None = None) -> Any:
    """A `Relaxation`: plain, by continuation, or with a weight adapter."""
    scheds = schedules(problem, homotopy)
    if scheds and adapter:
        raise CfcError(ErrorKind.ARGUMENT, "homotopy and a weight adapter cannot run "
                       "together yet", None, "drop --homotopy (and the model's 'from ... "
                       "over' schedules with --homotopy none) or --adapter")
    if adapter:
        return adapt(problem, solver, x0, options, progress, adapter, adapter_options)
    if scheds:
        return continuation(problem, solver, x0, options, progress, scheds, homotopy_options)
    if adapter_options:
        raise CfcError(ErrorKind.ARGUMENT, "adapter options without an adapter", None,
                       f"name one with --adapter ({', '.join(adapter_names())})")
    return problem.solve_once(solver, x0, options, progress)


__all__ = ["ADAPTERS", "Coordination", "HomotopyOptions", "Round", "Schedule", "Shape",
           "adapt", "adapter_names", "continuation", "relax", "schedules"]
