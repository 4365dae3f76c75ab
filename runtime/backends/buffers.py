"""Reusable output buffers for the C backend: a gradient array and its cffi pointer made once
and handed out again only when nobody else holds the array.

A returned gradient is the caller's own: solvers keep `g` across steps, compare two of them
or keep one inside a result. So a buffer is reused only when its reference count shows that
the pool is its sole holder (a caller's name, attribute, list entry or NumPy view all count),
otherwise a fresh one is made. On interpreters without CPython's reference counts every call
gets a fresh array. This saves the allocation and, more, the `ffi.from_buffer` per call.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

_COUNTED = sys.implementation.name == "cpython"
POOL_SIZE = 4  # live gradients a solver holds at once: current, trial, a few in a history


class BufferPool:
    """Zeroed float64 arrays of one length with their `double[]` pointers."""

    def __init__(self, ffi: Any, n: int):
        self._ffi, self._n = ffi, n
        self._slots: list[tuple[np.ndarray, Any]] = []
        probe = self._new()
        self._free = sys.getrefcount(probe[0])  # the count of an array only the pool holds
        self._slots.append(probe)

    def _new(self) -> tuple[np.ndarray, Any]:
        arr = np.zeros(self._n)
        return arr, self._ffi.from_buffer("double[]", arr)

    def take(self, zero: bool = True) -> tuple[np.ndarray, Any]:
        """An array nobody else holds, and its pointer; zeroed unless `zero` is False (for a
        kernel that zeroes it itself, cfc_eg_all)."""
        if not _COUNTED:
            return self._new()
        for slot in self._slots:
            if sys.getrefcount(slot[0]) <= self._free:
                if zero:
                    slot[0].fill(0.0)
                return slot
        slot = self._new()
        if len(self._slots) < POOL_SIZE:
            self._slots.append(slot)
        return slot


def fsum_list(values: list[float]) -> float:
    """The exactly rounded sum of Python floats (math.fsum, so the same bits as summing the
    family energies as an array); where fsum refuses (-inf + inf, an intermediate overflow)
    the plain IEEE sum, NaN or +-inf, as `native.exact_sum` does."""
    try:
        return math.fsum(values)
    except (ValueError, OverflowError):
        with np.errstate(all="ignore"):
            return float(np.sum(np.array(values, dtype=np.float64)))


__all__ = ["POOL_SIZE", "BufferPool", "fsum_list"]
