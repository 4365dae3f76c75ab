"""Threads for the C kernels: how many, and each family's threaded call when it pays.

The count is a runtime argument of the kernels (not part of the cache key): an explicit
`threads=`, else `CFC_THREADS`, else every core this process may use. A family smaller
than SERIAL_BELOW instances runs the serial kernel; the threaded one gives the same bits
(templates/parallel.c.j2), so the choice never changes a result, only the time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.runtime.bind.reorder import Locality

# Below this many instances a family's kernel runs on one thread. Measured with
# bench/grad_throughput.py --threshold on the 2-core development machine, which other jobs
# kept at a load of 6-7: two threads were slower than one at every size up to 3 * 10^5
# (2.3x slower there, 9-120x at 10^3-10^4; OMP_WAIT_POLICY=PASSIVE: 2.8x and 3.6-13x), so
# no idle crossover could be measured. 2 * 10^5 keeps every problem the issue calls small
# (10^2-10^5 variables in one family) serial even when a user asks for threads; the default
# count (idle_cores) already gives a busy machine one thread.
SERIAL_BELOW = 200_000


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def idle_cores() -> int:
    """All cores, less those other jobs keep busy (the 1-minute load average, this process
    counted as one): the default never oversubscribes. On the loaded development machine
    two threads were 2-120x slower than one at every size measured (bench/grad_throughput.py
    --threshold), so a busy machine gets one thread."""
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
    """One family's threaded entry points with their scratch buffer and slot copies. Each
    takes the serial kernel's arguments and then its tail below."""

    ep: Any  # cfc_ep_<energy>
    egp: Any  # cfc_egp_<energy>
    hvp: Any  # cfc_hvp_<energy>
    hdp: Any  # cfc_hdp_<energy>
    e_tail: tuple[Any, ...]  # (nc, co, ts, tp, S, threads): ep and egp
    eg_tail: tuple[Any, ...]
    h_tail: tuple[Any, ...]  # (nc, co, ts, tp, threads): hvp and hdp
    keep: tuple[Any, ...]  # the arrays and cffi buffers the pointers above point into


def threaded_call(ffi: Any, lib: Any, energy: str, family: int, size: int, nv: int,
                  layout: Locality, threads: int, params: tuple[np.ndarray, ...] = ()
                  ) -> Threaded | None:
    """The threaded form of one family, or None where the serial kernel is the one to run.
    The choice depends on the family's size, never on `threads`: the two forms add in
    different orders, and one thread must give the bits that N threads give."""
    slots = layout.slots[family]
    if size < SERIAL_BELOW or not slots or not hasattr(lib, f"cfc_egp_{energy}"):
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
    head = (copies.chunks, co, ts, tp)
    tail = (*head, ffi.cast("double *", sums.ctypes.data), threads)
    return Threaded(getattr(lib, f"cfc_ep_{energy}"), getattr(lib, f"cfc_egp_{energy}"),
                    getattr(lib, f"cfc_hvp_{energy}"), getattr(lib, f"cfc_hdp_{energy}"),
                    tail, tail, (*head, threads),
                    (copies, cparams, arrays, values, ts, tp, sums))


def openmp_built(lib: Any) -> bool:
    return bool(lib.cfc_openmp()) if hasattr(lib, "cfc_openmp") else False


__all__ = ["SERIAL_BELOW", "Threaded", "available_cores", "idle_cores", "openmp_built", "resolve_threads",
           "threaded_call"]
