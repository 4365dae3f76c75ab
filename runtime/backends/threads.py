"""Threads for the C kernels: how many, and each family's threaded form when it pays.

The count is a runtime argument of the kernels (not part of the cache key): an explicit
`threads=`, else `CFC_THREADS`, else the idle cores. A family of SERIAL_BELOW instances or
more runs the threaded drivers (templates/parallel.c.j2 over bind/copies.py) on every
thread count, 1 included; a smaller one runs the serial kernels on every count. The two
forms add the same terms in different orders (the threaded one slot by slot), so choosing
by size alone is what keeps the bits the same for any thread count.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from cfc_dsl.cores import available
from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.runtime.bind.reorder import Locality

# Below this many instances a family runs the serial kernels. Measured with
# OMP_WAIT_POLICY=PASSIVE bench/thread_scaling.py --clock cpu (process CPU time: the wall
# clock of this loaded 2-core machine, load 7-12, measured the other jobs) on sorted random
# graphs whose 2-slot families have 2N instances: the threaded form on 1 thread against the
# serial kernels, energy_and_grad / hvp / hess_diag, was 1.55 / 1.56 / 1.44x the work at
# 2e5 instances, 1.14 / 1.39 / 1.08x at 4e5, 1.07 / 0.99 / 1.03x at 6e5 and 1.02 / 1.25 /
# 0.88x at 2e6 (the second copy's pass costs what it saves only once X and G outgrow L2);
# 2 threads did 0.93-1.08x the work of 1 (their wall time on idle cores could not be
# measured here). From 5e5 on, one thread costs about what it did before the threaded form
# (1.13x at 2e7 instances, N = 1e7, where the copies' extra streaming shows).
SERIAL_BELOW = 500_000


available_cores = available  # the process's cores (cfc_dsl/cores.py)


def idle_cores() -> int:
    """All cores, less those other jobs keep busy (the 1-minute load average, this process
    counted as one): the default never oversubscribes. On the loaded development machine a
    second thread made a call up to 76x slower on the wall clock (every call ends at a
    barrier that waits for a thread another job keeps off its core), so a busy machine gets
    one thread."""
    cores = available_cores()
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cores
    return max(1, min(cores, int(cores + 1 - busy + 0.5)))


def resolve_threads(threads: int | None = None) -> int:
    """An explicit count, else CFC_THREADS, else the idle cores; a CfcError when not >= 1."""
    source = "threads"
    value: Any = threads
    if value is None:
        env = os.environ.get("CFC_THREADS", "").strip()
        if not env:
            return idle_cores()
        source, value = "CFC_THREADS", env
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = 0
    if count < 1 or str(value).strip() != str(count):
        raise CfcError(ErrorKind.ARGUMENT, f"{source} must be a whole number >= 1, got "
                       f"{value!r}", None, "e.g. --threads 2, or CFC_THREADS=1 for one thread")
    return count


@dataclass
class Threaded:
    """One family's threaded evaluations, each a driver of templates/parallel.c.j2 with the
    family's descriptor, slot copies, scratch buffer and thread count bound: `eg(w, X, G)`,
    `e(X)`, `hv(w, X, V, HV)` and `hd(w, X, D)`, as the serial kernels take their tails."""

    e: Callable[..., float]
    eg: Callable[..., float]
    hv: Callable[..., None]
    hd: Callable[..., None]
    keep: tuple[Any, ...]  # the arrays and cffi buffers the pointers above point into


def threaded_call(ffi: Any, lib: Any, energy: str, family: int, size: int, nv: int,
                  layout: Locality, threads: int, params: tuple[np.ndarray, ...] = ()
                  ) -> Threaded | None:
    """The threaded form of one family, or None where the serial kernel is the one to run.
    The choice depends on the family's size, never on `threads`: the two forms add in
    different orders, and one thread must give the bits that N threads give."""
    slots = layout.slots[family]
    if size < SERIAL_BELOW or not slots or not hasattr(lib, f"cfc_kernel_{energy}"):
        return None
    copies = layout.slot_copies(family, nv)
    ordered = tuple(np.ascontiguousarray(p, dtype=np.float64)
                    for p in layout.params(family, params))
    cparams = copies.params(ordered)
    arrays = [a for copy in copies.slots for a in copy]
    values = [p for copy in cparams for p in copy]
    ts = ffi.new("int64_t *[]", [ffi.cast("int64_t *", a.ctypes.data) for a in arrays])
    tp = ffi.new("double *[]", [ffi.cast("double *", p.ctypes.data) for p in values] or 1)
    sums = np.zeros(max(1, copies.chunks))
    co = ffi.cast("int64_t *", copies.starts.ctypes.data)
    head = (getattr(lib, f"cfc_kernel_{energy}")(), copies.chunks, co, ts, tp)
    s = ffi.cast("double *", sums.ctypes.data)
    return Threaded(partial(lib.cfc_ep, *head, s, threads), partial(lib.cfc_egp, *head, s, threads),
                    partial(lib.cfc_hvp, *head, threads), partial(lib.cfc_hdp, *head, threads),
                    (copies, cparams, arrays, values, ts, tp, sums))


def openmp_built(lib: Any) -> bool:
    return bool(lib.cfc_openmp()) if hasattr(lib, "cfc_openmp") else False


__all__ = ["SERIAL_BELOW", "Threaded", "available_cores", "idle_cores", "openmp_built", "resolve_threads",
           "threaded_call"]
