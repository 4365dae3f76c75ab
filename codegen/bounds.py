"""Curvature bounds as generated code: HessianBound -> `cfc_hb_<energy>` beside the kernels.

Per energy (never per instance), cfc_dsl/lipschitz.py gives a SymPy bound on every Hessian
entry |d2E/dx_i dx_j| over a box lo <= x <= hi, in the parameters and the box corners. Here
it is lowered to plain data (`BoundKernel`) and rendered by templates/bounds.c.j2 into

    void cfc_hb_<energy>(int64_t n, const double *lo_<slot>, const double *hi_<slot>, ...,
                         const double *P_<param>, ..., double *H)

which writes n row-major k x k matrices: H[k*kk + i*k + j] >= |H_ij| on instance k's box,
INFINITY where no finite bound holds. Each nonzero entry is rounded out as
`evaluate_bound` does (NaN -> +inf, v * (1 + 1e-12) + 1e-300), so the C value and the Python
interval evaluation of `entries` agree. The prototypes go through templates/prototypes.h.j2,
so the header and the cffi cdef declare exactly what the source defines.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cfc_dsl.codegen.viewtypes import BoundView, _Entry, views_context
from cfc_dsl.jobs import EnergyJob, energy_jobs
from cfc_dsl.model import Model, Target

if TYPE_CHECKING:
    import sympy as sp

    from cfc_dsl.derive import DerivedEnergy
    from cfc_dsl.lipschitz import HessianBound

# SymPy (and the modules that import it: ir, printer, derive, lipschitz) is imported inside
# the functions that lower a bound: `model_summary` of energies already prepared, and the
# view types, must not pay for it (issue 12: a compile of stored energies imports no SymPy).


@dataclass(frozen=True)
class BoundKernel:
    """One energy's bound, lowered: upper-triangle entries over box/param value symbols."""

    energy: str
    slots: tuple[str, ...]
    params: tuple[str, ...]
    entries: tuple[tuple[int, int, sp.Expr], ...]  # (i, j, bound) for i <= j
    lipschitz: bool
    reason: str

    @property
    def name(self) -> str:
        return f"cfc_hb_{self.energy}"


def box_value(side: str, slot: str) -> sp.Symbol:
    """The C local holding one corner coordinate of the instance's box: b_lo_x, b_hi_x."""
    import sympy as sp

    return sp.Symbol(f"b_{side}_{slot}", real=True)


@lru_cache(maxsize=256)
def energy_bound(energy: DerivedEnergy) -> HessianBound:
    """`hessian_bound`, memoised: the build, the cache entry and the runtime share one."""
    from cfc_dsl.lipschitz import hessian_bound

    return hessian_bound(energy)


def lower_bound(energy: DerivedEnergy) -> BoundKernel:
    import sympy as sp

    from cfc_dsl.codegen.ir import param_value

    hb = energy_bound(energy)
    rename: dict[sp.Basic, sp.Basic] = {p: param_value(p.name) for p in energy.params}
    for s, lo, hi in zip(hb.slots, hb.lower, hb.upper, strict=True):
        rename[lo], rename[hi] = box_value("lo", s), box_value("hi", s)
    # a renaming of symbols to symbols: nothing to re-simplify, and rebuilding each Max/Min
    # with evaluation on compared every pair of its arguments again (most of a compile)
    with sp.core.parameters.evaluate(False):
        entries = tuple((i, j, hb.entries[i][j].xreplace(rename)) for i, j in
                        itertools.combinations_with_replacement(range(len(hb.slots)), 2))
    return BoundKernel(hb.energy, hb.slots, hb.params, entries, hb.lipschitz, hb.reason)


def lower_bounds(energies: Iterable[DerivedEnergy]) -> tuple[BoundKernel, ...]:
    return tuple(lower_bound(e) for e in sorted(energies, key=lambda e: e.name))


def summary_row(energy: DerivedEnergy) -> dict[str, Any]:
    """What the runtime needs of one energy's bound without SymPy (the cache's entry.json):
    the static verdict, its reason and each entry's method."""
    hb = energy_bound(energy)
    return {"lipschitz": hb.lipschitz, "reason": hb.reason,
            "method": [list(row) for row in hb.method]}


def summary(energies: Iterable[DerivedEnergy]) -> dict[str, dict[str, Any]]:
    return {e.name: summary_row(e) for e in sorted(energies, key=lambda e: e.name)}


# (energy spec, its callees) -> summary_row, filled by codegen/prepare.py, whose workers
# bound the energies in other processes: the build asks for the summary after the source
_ROWS: dict[EnergyJob, dict[str, Any]] = {}


def remember_row(job: EnergyJob, row: dict[str, Any]) -> None:
    if len(_ROWS) >= 4096:
        _ROWS.clear()
    _ROWS[job] = row


def model_summary(model: Model) -> dict[str, dict[str, Any]]:
    out = {}
    for job in energy_jobs(model):
        row = _ROWS.get(job)
        if row is None:
            from cfc_dsl.derive import derive_job

            row = summary_row(derive_job(job))
        out[job[0].name] = row
    return out


# ---------------------------------------------------------------- render
def _comment(b: BoundKernel) -> str:
    head = f"{b.energy}({', '.join(b.slots)}; {', '.join(b.params)})"
    verdict = ("Lipschitz gradient on every bounded box" if b.lipschitz else
               f"not Lipschitz in general ({b.reason}): INFINITY where that may happen in the box")
    return f"{head}: {verdict}".replace("*/", "* /")


def bound_view(b: BoundKernel) -> BoundView:
    """What the bounds template reads of one energy's bound (strings only: picklable)."""
    from cfc_dsl.codegen.ir import param_loads
    from cfc_dsl.codegen.printer import bound_ccode

    k = len(b.slots)
    used = {s.name for _, _, e in b.entries for s in e.free_symbols}
    loads, unused = [], []
    for s in b.slots:
        for side in ("lo", "hi"):
            local = box_value(side, s).name
            if local in used:
                loads.append(f"const double {local} = {side}_{s}[k];")
            else:
                unused.append(f"{side}_{s}")
    params, unused_params = param_loads(b.params, used)
    loads += params
    unused += unused_params
    entries = []
    for i, j, e in b.entries:
        target = f"h[{i * k + j}]" if i == j else f"h[{i * k + j}] = h[{j * k + i}]"
        entries.append(_Entry(target, "0.0" if e == 0 else f"cfc__hb_round({bound_ccode(e)})"))
    return BoundView(b.name, b.slots, b.params, k * k, _comment(b), tuple(loads),
                      tuple(unused), tuple(entries))


def context(bounds: tuple[BoundKernel, ...], target: Target) -> dict[str, Any]:
    """The `hb` variable of the templates."""
    return views_context(tuple(bound_view(b) for b in bounds), target)


__all__ = ["BoundKernel", "BoundView", "bound_view", "context", "energy_bound", "lower_bound",
           "lower_bounds", "model_summary", "remember_row", "summary", "summary_row",
           "views_context"]
