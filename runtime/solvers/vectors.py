"""Inner products and norms of the solvers' long vectors, off BLAS on purpose.

NumPy's `a @ b`, `np.dot` and `np.linalg.norm` of 1-D arrays call OpenBLAS's ddot, which
splits a vector past a few thousand entries over its thread pool. On a loaded machine each
call then waits for the pool to be scheduled: on the shared 2-core benchmark machine a
10^5-entry `a @ b` took 10-13 ms instead of 0.1 ms, and newton spent 6 of its 8 s at 10^5 in
them (cProfile, docs/solvers.md). The split also changes the order of summation with the
thread count, so the iterates depended on OPENBLAS_NUM_THREADS. `np.einsum` without
`optimize` runs NumPy's own single-threaded SIMD loop: ~0.15 ms at 10^5 whatever the load,
and the same bits for the same input.
"""

from __future__ import annotations

import math

import numpy as np


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """a . b of two 1-D float64 arrays."""
    return float(np.einsum("i,i->", a, b))


def norm(a: np.ndarray) -> float:
    """|a|_2 of a 1-D float64 array, as sqrt(a . a) (what np.linalg.norm computes for one:
    no scaling against overflow either)."""
    return math.sqrt(float(np.einsum("i,i->", a, a)))


# np.clip is a Python function that dispatches (~8 us at N = 10^3, most of a clip's cost
# there) before it calls the `clip` ufunc; the solvers call the ufunc itself: the same
# function on the same arguments, so the same bits. NumPy keeps it in its private _core
# namespace, hence the fallback to the public wrapper.
_clip_ufunc = getattr(getattr(np, "_core", None), "umath", None)
clip = getattr(_clip_ufunc, "clip", None) or np.clip


def inside(z: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    """lo <= z <= hi everywhere (the arrays' own all(): np.all's dispatch costs as much
    as the test at N = 10^3)."""
    return bool((z >= lo).all() and (z <= hi).all())
