"""Coordination above the solvers: continuation (`homotopy.py`) and term-weight adapters
(`adapters.py`) change a problem's effective family weights between warm-started rounds of
any registered solver (`rounds.py`), and always report the energy under the user's weights.
`relax` is what `Problem.relax` calls: it picks plain, homotopy or adapter runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cfc_dsl.diagnostics import CfcError, ErrorKind

if TYPE_CHECKING:
    import numpy as np

    from cfc_dsl.runtime.coordinate.adapters import ADAPTERS, adapt
    from cfc_dsl.runtime.coordinate.homotopy import (
        HomotopyOptions,
        Schedule,
        Shape,
        continuation,
    )
    from cfc_dsl.runtime.coordinate.rounds import Coordination, Round

# The submodules are imported on first use (PEP 562 `__getattr__` below): a plain run,
# with no schedule, adapter or gate, imports none of them (issue 12: start-up).
_LAZY = {"ADAPTERS": "adapters", "adapt": "adapters", "HomotopyOptions": "homotopy",
         "Schedule": "homotopy", "Shape": "homotopy", "continuation": "homotopy",
         "model_schedules": "homotopy", "Coordination": "rounds", "Round": "rounds"}
# The shipped adapters in registration order, for `--adapter` choices without importing
# adapters.py; tests/test_startup.py checks it against the registry.
BUILTIN_ADAPTERS = ("gradnorm", "balance", "smallgain")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def adapter_names() -> tuple[str, ...]:
    """The registered adapters' names (the shipped ones until adapters.py is imported,
    which is when any other could register)."""
    import sys

    adapters = sys.modules.get(f"{__name__}.adapters")
    return BUILTIN_ADAPTERS if adapters is None else adapters.adapter_names()


def schedules(problem: Any, homotopy: Any) -> list[Schedule]:
    """The schedules a run uses: None -> the model's; a string or Schedule, or a sequence
    of them ("chain=0.1:40" as on the command line)."""
    if homotopy is None:
        if all(getattr(t, "schedule", None) is None for t in problem.bound.families):
            return []  # what model_schedules returns, without importing homotopy.py
        from cfc_dsl.runtime.coordinate.homotopy import model_schedules

        return model_schedules(problem)
    from cfc_dsl.runtime.coordinate.homotopy import Schedule

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
        from cfc_dsl.runtime.coordinate.adapters import adapt

        return adapt(problem, solver, x0, options, progress, adapter, adapter_options)
    if scheds:
        from cfc_dsl.runtime.coordinate.homotopy import continuation

        return continuation(problem, solver, x0, options, progress, scheds, homotopy_options)
    if adapter_options:
        raise CfcError(ErrorKind.ARGUMENT, "adapter options without an adapter", None,
                       f"name one with --adapter ({', '.join(adapter_names())})")
    return problem.solve_once(solver, x0, options, progress)


__all__ = ["ADAPTERS", "BUILTIN_ADAPTERS", "Coordination", "HomotopyOptions", "Round",
           "Schedule", "Shape", "adapt", "adapter_names", "continuation", "relax", "schedules"]
