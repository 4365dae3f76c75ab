"""Sequence order parameters: exact monotonicity scores and the gain of a repair.

The research code sampled 512 pairs (not uniformly: pairs with a late first index were
over-weighted, SEED_SPEC 2.3) and left the sampler unseeded, so its gains (about 0.006)
drowned in sampling noise (sd about 0.004). Here every ordered pair is counted, in
O(n log n) with a Fenwick tree over value ranks; only the input sequence is random, seeded.
"""

from __future__ import annotations

import numpy as np

from cfc_dsl.runtime.observables.registry import observable


def _ranks(values: np.ndarray) -> np.ndarray:
    """Dense ranks 1..k (equal values share a rank), for the Fenwick tree's index."""
    _, inverse = np.unique(values, return_inverse=True)
    return inverse.ravel().astype(np.int64) + 1


def prefix_monotonicity(values: np.ndarray) -> np.ndarray:
    """score[j] = fraction of pairs i < k <= j with v[i] <= v[k], for every prefix 0..j.

    score[0] = 1 (a single value has no pair out of order). One left-to-right pass: for each
    new value, the earlier values strictly above it are the new out-of-order pairs.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return np.zeros(0)
    if not np.all(np.isfinite(v)):
        raise ValueError("monotonicity needs finite values")
    ranks = _ranks(v)
    k = int(ranks.max())
    tree = [0] * (k + 1)
    inversions = 0
    out = np.ones(v.size)
    for j, r in enumerate(ranks.tolist()):
        at_most = 0  # earlier values with rank <= r
        i = r
        while i > 0:
            at_most += tree[i]
            i -= i & -i
        inversions += j - at_most
        i = r
        while i <= k:
            tree[i] += 1
            i += i & -i
        if j:
            out[j] = 1.0 - inversions / (j * (j + 1) // 2)
    return out


def monotonicity_score(values: np.ndarray) -> float:
    """Fraction of all ordered pairs i < j with v[i] <= v[j]; 1 for a sorted sequence."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size < 2:
        raise ValueError("monotonicity needs at least 2 values")
    return float(prefix_monotonicity(v)[-1])


def dipped_ramp(n: int = 64, dip: float = -0.5, position: int = 20, noise: float = 0.01,
                seed: int = 42) -> np.ndarray:
    """The research experiments' sequence: a ramp 0..1, a dip at `position`, Gaussian noise."""
    if n < 2 or not 0 <= position < n:
        raise ValueError(f"need n >= 2 and 0 <= position < n, got n={n}, position={position}")
    x = np.linspace(0.0, 1.0, n)
    x[position] += dip
    return x + np.random.default_rng(seed).normal(0.0, noise, n)


def repair_gain(values: np.ndarray, position: int, eta: float = 1.0) -> float:
    """Score after blending v[position] toward v[position-1] by `eta`, minus the score before.

    eta = 1 is the research code's hard repair (lift the bad value to its left neighbour);
    eta in (0, 1) is its soft repair, the blend a gate opened by eta would apply.
    """
    v = np.asarray(values, dtype=np.float64).ravel().copy()
    if not 1 <= position < v.size:
        raise ValueError(f"repair needs 1 <= position < {v.size}, got {position}")
    before = monotonicity_score(v)
    v[position] = (1.0 - eta) * v[position] + eta * v[position - 1]
    return monotonicity_score(v) - before


@observable
def sequence_monotonicity(*, n: int = 64, dip: float = -0.5, position: int = 20,
                          noise: float = 0.01, seed: int = 42) -> np.ndarray:
    """Exact prefix monotonicity scores [n] of a seeded dipped ramp (score[j]: prefix 0..j)."""
    return prefix_monotonicity(dipped_ramp(n, dip, position, noise, seed))


@observable
def sequence_values(*, n: int = 64, dip: float = -0.5, position: int = 20, noise: float = 0.01,
                    seed: int = 42) -> np.ndarray:
    """The seeded dipped ramp itself [n]: ramp 0..1, a dip at `position`, Gaussian noise."""
    return dipped_ramp(n, dip, position, noise, seed)


@observable
def sequence_repair_gain(*, n: int = 64, dip: float = -0.5, position: int = 20,
                         noise: float = 0.01, seed: int = 42, eta: float = 1.0) -> np.ndarray:
    """Exact gain (a scalar) in monotonicity from repairing `position` by `eta` (1: hard)."""
    return np.asarray(repair_gain(dipped_ramp(n, dip, position, noise, seed), position, eta))
