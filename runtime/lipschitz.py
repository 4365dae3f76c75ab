"""A global Lipschitz constant L for the gradient of F, assembled at bind time (Gershgorin).

Per family, each instance gets a k x k matrix B >= |Hessian of its energy| on its box (the
bounds of the variables in its slots), from the generated `cfc_hb_<energy>` (C backend) or
from `evaluate_bound` (Python); the tighter polynomial evaluation refines the C value when
asked. Every instance adds |weight| * (row i of B summed) to the variable in slot i
(np.bincount), and L is the largest of these per-variable sums. Since each row sum of the
assembled Hessian of F is at most that variable's sum, L >= ||Hessian of F||_2 everywhere in
the box, so projected gradient with step 1/L never raises F.

A family whose bound is +inf for some instance has no such L: it is reported with the first
such instance and a reason (from cfc_dsl/lipschitz.py, stored in the cache's entry.json at
build time so a cache hit needs no SymPy).
"""

from __future__ import annotations

import json
import math
import sys
import weakref
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from cfc_dsl.diagnostics import CfcError, ErrorKind, Span
from cfc_dsl.runtime.bind.tables import BoundModel, FamilyTable
from cfc_dsl.runtime.build.pipeline import CompiledKernels


class Problem(Protocol):
    """What the global bound reads of a bound problem: its tables, its current per-family
    weights (they scale each family's rows, so L follows a weight change) and its kernels
    (the generated bound functions and the cache entry's metadata); None on Python."""

    @property
    def weights(self) -> np.ndarray: ...

    @property
    def bound(self) -> BoundModel: ...

    @property
    def kernels(self) -> CompiledKernels | None: ...


@dataclass(frozen=True)
class FamilyBound:
    name: str
    energy: str
    weight: float
    lipschitz: bool  # a finite bound on every instance's box
    reason: str  # why not, '' when lipschitz
    instance: int | None  # the first instance with an infinite bound
    where: str  # "factor 'f' at i = 3"
    share: float  # this family's part of the row sum that sets L
    max_row: float  # this family alone: the largest per-variable weighted row sum
    span: Span | None


@dataclass(frozen=True)
class GlobalBound:
    L: float  # +inf when some family is not Lipschitz on its box
    variable: str | None  # the element whose Gershgorin row sets L
    families: tuple[FamilyBound, ...]
    source: str  # "c", "python" or "c+polynomial"

    @property
    def finite(self) -> bool:
        return math.isfinite(self.L)

    @property
    def offending(self) -> FamilyBound | None:
        return next((f for f in self.families if not f.lipschitz), None)

    def report(self) -> dict[str, Any]:
        """The `lipschitz` object of `cfc run --json` (and `cfc check`)."""
        return {"L": _num(self.L), "variable": self.variable, "source": self.source,
                "families": {f.name: {"share": _num(f.share), "max_row": _num(f.max_row),
                                      "lipschitz": f.lipschitz, "reason": f.reason}
                             for f in self.families}}


def _num(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


_MEMO: weakref.WeakKeyDictionary[Problem, dict[tuple[bool, bytes], GlobalBound]] = (
    weakref.WeakKeyDictionary())


def global_lipschitz(problem: Problem, refine: bool | None = None) -> GlobalBound:
    """L for a bound problem, memoised per problem. `refine`: also evaluate polynomial
    entries exactly (needs SymPy); None = when SymPy is already loaded or the backend is
    Python. The C bound alone is always used when the kernels have it."""
    if refine is None:
        refine = "sympy" in sys.modules or problem.kernels is None
    memo = _MEMO.setdefault(problem, {})
    key = (refine, np.asarray(problem.weights, dtype=np.float64).tobytes())
    if key not in memo:
        memo[key] = _assemble(problem, refine)
    return memo[key]


def lipschitz_report(problem: Problem, refine: bool | None = None) -> dict[str, Any]:
    """{"L": float | None, "variable", "source", "families": {name: {"share", "max_row",
    "lipschitz", "reason"}}}: what `cfc run --json` prints under "lipschitz"."""
    return global_lipschitz(problem, refine).report()


def has_c_bounds(problem: Problem) -> bool:
    """Whether every family's bound comes from generated code (cheap, no SymPy)."""
    lib = problem.kernels.lib if problem.kernels else None
    return lib is not None and all(_c_function(lib, t.energy) is not None
                                   for t in problem.bound.families)


def certified_lipschitz(problem: Problem, solver: str, hint: str) -> float:
    """The L a solver that declares `Needs.LIPSCHITZ` runs with, at the problem's current
    weights: finite and >= 0, or a refusal that names the first factor without a bound.
    No refinement: a run takes the same steps on a cache hit (no SymPy) as on a miss."""
    gb = global_lipschitz(problem, refine=False)
    bad = gb.offending
    if bad is not None or not gb.finite:
        what = (f"{bad.where} (energy {bad.energy}) is not: {bad.reason}" if bad is not None
                else "the bound is not finite")
        raise CfcError(ErrorKind.ARGUMENT,
                       f"solver '{solver}' needs a gradient that is Lipschitz on the variables' "
                       f"box, but {what}", bad.span if bad is not None else None, hint)
    return gb.L


# ---------------------------------------------------------------- assembly
def _assemble(problem: Problem, refine: bool) -> GlobalBound:
    bound = problem.bound
    n = bound.n
    meta = _entry_meta(problem)
    total = np.zeros(n)
    weights = np.asarray(problem.weights, dtype=np.float64)
    parts: list[tuple[FamilyTable, np.ndarray, int | None]] = []
    sources: set[str] = set()
    for index, table in enumerate(bound.families):
        b, source = instance_bounds(problem, index, refine)
        if table.size:
            sources.add(source)
        weight = abs(float(weights[index]))
        contrib = np.zeros(n)
        bad: int | None = None
        if weight > 0 and table.size:
            rows = b.sum(axis=2)  # (m, k): one Gershgorin row per slot
            infinite = ~np.all(np.isfinite(rows), axis=1)
            if infinite.any():
                bad = int(np.flatnonzero(infinite)[0])
            for slot, row in zip(table.slots, rows.T, strict=True):
                contrib += np.bincount(slot, weights=weight * row, minlength=n)
        parts.append((table, contrib, bad))
        total += contrib
    top = int(np.argmax(total)) if n else None
    L = float(total[top]) if top is not None else 0.0
    if math.isnan(L) or any(bad is not None for _, _, bad in parts):
        L = math.inf
    families = []
    for index, (table, contrib, bad) in enumerate(parts):
        where = table.describe(bad) if bad is not None else f"factor '{table.name}'"
        families.append(FamilyBound(
            table.name, table.energy, float(weights[index]), bad is None,
            _reason(problem, table, bad, meta) if bad is not None else "", bad, where,
            float(contrib[top]) if top is not None and bad is None else
            (0.0 if bad is None else math.inf),
            float(contrib.max()) if n and bad is None else (0.0 if bad is None else math.inf),
            table.family.call_span))
    source = "+".join(sorted(sources, key=["c", "polynomial", "python"].index)) or "c"
    variable = bound.element(top) if top is not None else None
    return GlobalBound(L, variable, tuple(families), source)


def instance_bounds(problem: Problem, index: int, refine: bool = False) -> tuple[np.ndarray, str]:
    """(m, k, k) bounds on |Hessian| for family `index`'s instances on their boxes, and where
    they came from: "c", "polynomial" (C refined by the exact polynomial max) or "python"."""
    bound = problem.bound
    table = bound.families[index]
    k = len(table.slots)
    if table.size == 0:
        return np.zeros((0, k, k)), "c"
    lo = [np.ascontiguousarray(bound.lower[s]) for s in table.slots]
    hi = [np.ascontiguousarray(bound.upper[s]) for s in table.slots]
    c = _c_bounds(problem, table, lo, hi)
    if c is not None and not refine:
        return c, "c"
    from cfc_dsl.lipschitz import evaluate_bound

    hb = _hessian_bound(problem, table.energy)
    if c is not None and not any(m == "polynomial" for row in hb.method for m in row):
        return c, "c"
    py = evaluate_bound(hb, dict(zip(hb.params, table.params, strict=True)),
                        dict(zip(hb.slots, lo, strict=True)), dict(zip(hb.slots, hi, strict=True)))
    if c is None:
        return py, "python"
    return np.fmin(c, py), "polynomial"  # both are bounds; fmin ignores a NaN in one


def _c_function(lib: Any, energy: str) -> Any:
    try:
        return getattr(lib, f"cfc_hb_{energy}")
    except AttributeError:  # a module built before the bounds existed, or a foreign one
        return None


def _c_bounds(problem: Problem, table: FamilyTable, lo: list[np.ndarray],
              hi: list[np.ndarray]) -> np.ndarray | None:
    kernels = problem.kernels
    fn = _c_function(kernels.lib, table.energy) if kernels else None
    if fn is None or kernels is None:
        return None
    ffi, k = kernels.ffi, len(table.slots)
    out = np.empty((table.size, k, k))
    arrays = [a for pair in zip(lo, hi, strict=True) for a in pair]
    arrays += [np.ascontiguousarray(p, dtype=np.float64) for p in table.params]
    args = [ffi.cast("double *", a.ctypes.data) for a in arrays]
    fn(table.size, *args, ffi.cast("double *", out.ctypes.data))
    return out


def _hessian_bound(problem: Problem, energy: str) -> Any:
    from cfc_dsl.codegen.bounds import energy_bound
    from cfc_dsl.derive import derive_energy

    specs = {e.name: e for e in problem.bound.model.energies}
    return energy_bound(derive_energy(specs[energy], specs))


def _entry_meta(problem: Problem) -> dict[str, Any]:
    """entry.json's per-energy "lipschitz" summary, {} when the backend has none."""
    info = problem.kernels.info if problem.kernels else None
    if info is None:
        return {}
    try:
        meta = json.loads((info.path / "entry.json").read_text())
    except (OSError, ValueError):
        return {}
    return meta.get("lipschitz") or {}


def _reason(problem: Problem, table: FamilyTable, instance: int, meta: dict[str, Any]) -> str:
    static = (meta.get(table.energy) or {}).get("reason")
    if static is None and ("sympy" in sys.modules or problem.kernels is None):
        static = _hessian_bound(problem, table.energy).reason
    if static:
        return static
    bound = problem.bound
    box = ", ".join(f"{bound.element(int(s[instance]))} in [{bound.lower[s[instance]]:g}, "
                    f"{bound.upper[s[instance]]:g}]" for s in table.slots)
    return f"its curvature has no finite bound on the box {box}"


__all__ = ["FamilyBound", "GlobalBound", "global_lipschitz", "has_c_bounds", "instance_bounds",
           "lipschitz_report", "certified_lipschitz"]
