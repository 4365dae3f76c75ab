"""Audit stage, points: where each family's gradient is checked.

`PointSampler` draws, seeded per family, box corners, points on every face, points on each kink
(a relu/abs argument at 0, bisected to the nearest float) and beside it, and interior points,
for instances of the family drawn at random; `cfc_dsl.runtime.audit.gradients` checks the kernels there.
"""

from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

from cfc_dsl.runtime.audit.oracles import Oracle, finite_mpf, mp_call
from cfc_dsl.runtime.audit.report import AuditOptions
from cfc_dsl.runtime.bind.tables import BoundModel, FamilyTable

KINK_SIDES = (1e-6, 1e-11)  # approach distances from a kink, relative to the box width
KINDS = ("corner", "face", "kink", "kink_side", "interior")


@dataclass(frozen=True)
class Point:
    """One point of the audit: its kind (one of KINDS), the instance and x for its slots."""

    kind: str
    instance: int
    x: np.ndarray


class PointSampler:
    """The points for one family, from a generator seeded by the seed and the family name."""

    def __init__(self, oracle: Oracle, table: FamilyTable, bound: BoundModel,
                 options: AuditOptions):
        self.oracle = oracle
        self.table = table
        self.k = len(oracle.d.slots)
        seed = [options.seed, zlib.crc32(table.name.encode())]
        self.rng = np.random.default_rng(seed)
        self.samples = options.samples
        lo = np.stack([bound.lower[s] for s in table.slots], axis=1) if self.k else None
        hi = np.stack([bound.upper[s] for s in table.slots], axis=1) if self.k else None
        self.lo, self.hi = _finite_box(lo, hi)
        self.params = (np.stack(table.params, axis=1) if table.params
                       else np.zeros((table.size, 0)))

    def instance(self) -> int:
        return int(self.rng.integers(self.table.size))

    def interior(self, i: int) -> np.ndarray:
        u = self.rng.random(self.k)
        return self.lo[i] + (self.hi[i] - self.lo[i]) * u

    def points(self) -> list[Point]:
        k, n = self.k, self.samples
        out: list[Point] = []
        corners = list(itertools.product((0, 1), repeat=k)) if k <= 6 else \
            [tuple(self.rng.integers(0, 2, k)) for _ in range(64)]
        for c in corners:
            i = self.instance()
            out.append(Point("corner", i, np.where(np.array(c) == 1, self.hi[i], self.lo[i])))
        per_face = max(1, math.ceil(n / 8 / (2 * k)))
        for s in range(k):
            for side in (0, 1):
                for _ in range(per_face):
                    i = self.instance()
                    x = self.interior(i)
                    x[s] = (self.lo[i] if side == 0 else self.hi[i])[s]
                    out.append(Point("face", i, x))
        out += self.kink_points()
        interior = max(n - len(out), math.ceil(n / 4))
        for _ in range(interior):
            i = self.instance()
            out.append(Point("interior", i, self.interior(i)))
        return out

    def kink_points(self) -> list[Point]:
        pairs = [(j, s) for j, slots in enumerate(self.oracle.kink_slots) for s in slots]
        if not pairs:
            return []
        per_pair = max(2, math.ceil(self.samples / 4 / (1 + 2 * len(KINK_SIDES)) / len(pairs)))
        out: list[Point] = []
        for j, s in pairs:
            found = 0
            for _attempt in range(per_pair * 10):
                if found == per_pair:
                    break
                i = self.instance()
                x = self.interior(i)
                root = self._root(j, s, i, x)
                if root is None:
                    continue
                found += 1
                x[s] = root
                out.append(Point("kink", i, x.copy()))
                width = self.hi[i, s] - self.lo[i, s]
                for d in KINK_SIDES:
                    for sign in (-1.0, 1.0):
                        y = x.copy()
                        y[s] = root + sign * d * max(width, abs(root), 1e-300)
                        if self.lo[i, s] <= y[s] <= self.hi[i, s] and y[s] != root:
                            out.append(Point("kink_side", i, y))
        return out

    def _root(self, j: int, s: int, i: int, x: np.ndarray) -> float | None:
        """A float t with kink argument j nearest 0 at x[s] = t, bracketed on a grid."""
        lo, hi = float(self.lo[i, s]), float(self.hi[i, s])
        if not lo < hi:
            return None
        grid = np.linspace(lo, hi, 33)
        cols = [np.full(grid.shape, v) for v in x] + [np.full(grid.shape, p) for p in self.params[i]]
        cols[s] = grid
        with np.errstate(all="ignore"):
            vals = np.broadcast_to(np.asarray(self.oracle.kink_np[j](*cols), float), grid.shape)
        cands: list[tuple[float, float]] = [(g, g) for g, v in zip(grid, vals, strict=True)
                                              if v == 0]
        sgn = np.sign(vals)
        cands += [(grid[a], grid[a + 1]) for a in range(len(grid) - 1)
                  if sgn[a] * sgn[a + 1] < 0]
        if not cands:
            return None
        a, b = cands[int(self.rng.integers(len(cands)))]
        if a == b:
            return float(a)
        u = self.oracle.kink_mp[j]
        params = [mpmath.mpf(float(p)) for p in self.params[i]]

        def f(t: float) -> Any:
            xs = [mpmath.mpf(float(v)) for v in x]
            xs[s] = mpmath.mpf(t)
            return mp_call(u, xs + params)

        fa = f(a)
        if not finite_mpf(fa):
            return None
        for _ in range(200):
            m = 0.5 * (a + b)
            if m in (a, b):
                break
            fm = f(m)
            if not finite_mpf(fm):
                return None
            if fm == 0:
                return float(m)
            if (fm > 0) == (fa > 0):
                a, fa = m, fm
            else:
                b = m
        fb = f(b)
        return float(a if not finite_mpf(fb) or abs(fa) <= abs(fb) else b)


def _finite_box(lo: np.ndarray | None, hi: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The variables' bounds, with an infinite side replaced by the other side -/+ 10."""
    if lo is None or hi is None:
        return np.zeros((0, 0)), np.zeros((0, 0))
    lo, hi = lo.astype(float).copy(), hi.astype(float).copy()
    lo_bad, hi_bad = ~np.isfinite(lo), ~np.isfinite(hi)
    lo[lo_bad] = np.where(np.isfinite(hi[lo_bad]), hi[lo_bad], 0.0) - 10.0
    hi[hi_bad] = np.where(np.isfinite(lo[hi_bad]), lo[hi_bad], 0.0) + 10.0
    return lo, hi
