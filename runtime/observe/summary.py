"""What `cfc run` says about a relaxed state, like CmdStan's `diagnose`: how many elements
of each variable sit at each bound, the factor instances with the largest weighted energy
(the residuals left), the families that dominate the final energy, and the values chosen
with `--show eta[18:23],gate`. Each part is plain data (`summary_json`) and lines of text.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cfc_dsl.diagnostics import CfcError, ErrorKind, Span
from cfc_dsl.frozen import frozen
from cfc_dsl.runtime.observe.records import parse_item, split_items

MAX_RESIDUAL_INSTANCES = 2_000_000  # above this, the per-instance pass is skipped
TOP = 3


@frozen
class BoundCount:
    variable: str
    size: int
    at_lower: int
    at_upper: int


@frozen
class Residual:
    where: str  # "factor 'link' at i = 3"
    energy: float  # the instance's weighted energy


def bound_counts(layout: Any, x: np.ndarray, lower: np.ndarray, upper: np.ndarray
                 ) -> list[BoundCount]:
    """Elements exactly at (within 1e-12 of the box width of) each bound, per variable."""
    out = []
    for v in layout:
        sl = slice(v.offset, v.offset + v.size)
        xs, lo, hi = x[sl], lower[sl], upper[sl]
        width = np.where(np.isfinite(hi - lo), hi - lo, 1.0)
        tol = 1e-12 * np.maximum(width, 1.0)
        out.append(BoundCount(v.name, int(v.size), int(np.sum(np.abs(xs - lo) <= tol)),
                              int(np.sum(np.abs(hi - xs) <= tol))))
    return out


def dominant_families(families: dict[str, float], top: int = TOP) -> list[tuple[str, float, float]]:
    """(family, weighted energy, share of Σ|F_f|), largest |F_f| first."""
    total = sum(abs(v) for v in families.values())
    ranked = sorted(families.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:top]
    return [(k, v, abs(v) / total if total else 0.0) for k, v in ranked]


def largest_residuals(problem: Any, x: np.ndarray, top: int = TOP) -> list[Residual] | None:
    """The instances with the largest weighted energy (the NumPy reference backend
    evaluates each instance); None for graphs too large for that pass."""
    bound = problem.bound
    if sum(t.size for t in bound.families) > MAX_RESIDUAL_INSTANCES:
        return None
    from cfc_dsl.runtime.backends.native import PythonBackend

    ref = PythonBackend(bound)
    found: list[Residual] = []
    for i, table in enumerate(bound.families):
        values = float(problem.weights[i]) * np.asarray(ref.per_instance(i, x), dtype=float)
        for k in np.argsort(-values, kind="stable")[:top]:
            found.append(Residual(table.describe(int(k)), float(values[k])))
    found.sort(key=lambda r: -r.energy)
    return found[:top]


def show_values(spec: str, layout: Any, x: np.ndarray, span: Span | None = None
                ) -> list[tuple[str, list[float]]]:
    """`eta[18:23],gate` -> [("eta[18:23]", [...]), ("gate", [...])] (flat indices)."""
    by_name = {v.name: v for v in layout}
    out = []
    for item in split_items(spec):
        name, lo, hi = parse_item(item, span, "--show")
        if name not in by_name:
            import difflib

            close = difflib.get_close_matches(name, list(by_name), n=1)
            raise CfcError(ErrorKind.ARGUMENT, f"--show: no variable '{name}'", span,
                           (f"did you mean '{close[0]}'? " if close else "")
                           + f"the variables: {', '.join(by_name)}")
        v = by_name[name]
        start, stop = (0, v.size) if lo is None else (lo, v.size if hi is None else hi)
        if not 0 <= start < stop <= v.size:
            raise CfcError(ErrorKind.ARGUMENT, f"--show: [{start}:{stop}] is outside "
                           f"'{name}' ({v.size} elements)", span,
                           f"use flat indices in 0..{v.size}")
        values = x[v.offset + start:v.offset + stop]
        out.append((item, [float(a) + 0.0 for a in values]))
    return out


def summary_json(problem: Any, x: np.ndarray, families: dict[str, float],
                 residuals: bool = True) -> dict[str, Any]:
    bound = problem.bound
    res = largest_residuals(problem, x) if residuals else None
    return {
        "bounds": [vars(b) for b in bound_counts(bound.layout, x, bound.lower, bound.upper)],
        "dominant_families": [{"family": f, "energy": e, "share": s}
                              for f, e, s in dominant_families(families)],
        "residuals": None if res is None else [vars(r) for r in res],
    }


def summary_lines(summary: dict[str, Any], shown: list[tuple[str, list[float]]]) -> list[str]:
    lines = []
    for name, values in shown:
        text = ", ".join(f"{v:.6g}" for v in values)
        lines.append(f"  {name} = {text if len(values) == 1 else '[' + text + ']'}")
    parts = [f"{b['variable']} {b['at_lower']} at lower, {b['at_upper']} at upper "
             f"(of {b['size']})" for b in summary["bounds"]]
    if parts:
        lines.append("  bounds  " + "; ".join(parts))
    fams = [f"{d['family']} {d['energy'] + 0.0:.6g} ({100 * d['share']:.0f}%)"
            for d in summary["dominant_families"]]
    if fams:
        lines.append("  largest families  " + ", ".join(fams))
    if summary["residuals"]:
        lines.append("  largest instances  " + "; ".join(
            f"{r['where']} {r['energy'] + 0.0:.6g}" for r in summary["residuals"]))
    return lines
