"""Audit stage: check the compiled kernels' gradients against exact references, per family.

For every factor family, the generated `cfc_eg_<energy>` kernel is called on one instance at a
time (n = 1, slot indices 0..k-1 into a k-vector, that instance's bound parameter values), so
each family is checked in isolation from the scatter-add. Its gradient is compared with

- exact: the SymPy gradient evaluated with mpmath at `DPS` digits, using the same one-sided
  convention the kernels use at kinks (step(0) = 0, sign(0) = 0);
- complex step: Im E(x + i h e_s) / h on the SymPy energy in mpmath, h = 1e-30 (independent of
  SymPy's differentiation; relu/abs take their local analytic branch, so it is skipped only on
  a kink);
- finite differences: a central (or, on a box face, one-sided second-order) difference of the
  compiled energy kernel `cfc_e_<energy>` with a step chosen per point, its tolerance computed
  from the step (Richardson difference plus a rounding bound); skipped where the stencil would
  cross a kink;
- energy: both kernels' energies against the mpmath energy.

Points: every box corner, points on every face, random interior points and points on each
kink (each relu/abs/max/min argument at 0, found by bisection to the nearest float, plus points
approaching it from both sides), at least `samples` per family. Parameters and boxes come from
instances of the family drawn at random from the bound model. All of it is seeded.

This module runs the checks (`FamilyAuditor`, `audit`); the references and the kernel probe are
in `cfc_dsl.runtime.audit.oracles`, the points in `cfc_dsl.runtime.audit.points`, the options and result types
in `cfc_dsl.runtime.audit.report`. Their public names are importable from here too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import mpmath
import numpy as np

from cfc_dsl.derive import DerivedEnergy, derive_model
from cfc_dsl.runtime.audit.oracles import (
    COMPLEX_STEP,
    EPS,
    FD_ROUNDING,
    KernelProbe,
    Oracle,
    finite_difference,
    finite_mpf,
    kernel_error,
    kink_arguments,
    magnitude,
    mp_call,
)
from cfc_dsl.runtime.audit.oracles import MAX_VARIANTS as MAX_VARIANTS
from cfc_dsl.runtime.audit.points import KINDS, KINK_SIDES, Point, PointSampler
from cfc_dsl.runtime.audit.report import DPS as DPS
from cfc_dsl.runtime.audit.report import REFERENCES as REFERENCES
from cfc_dsl.runtime.audit.report import RTOL as RTOL
from cfc_dsl.runtime.audit.report import AuditOptions, AuditReport, FamilyAudit, Tally
from cfc_dsl.runtime.bind.tables import BoundModel, FamilyTable

KINK_AMBIGUITY = 1e3  # a kink argument within 1e3 eps * its size of 0 may round either way


# ---------------------------------------------------------------- one family
def method() -> dict[str, Any]:
    """The audit's fixed choices, recorded in every report and certificate."""
    return {
        "scale": "max(1, |g|, sum of |terms of g|) for a gradient entry g; "
                 "max(1, sum of |terms of E|) for the energy",
        "kink_sides": list(KINK_SIDES), "kink_ambiguity": KINK_AMBIGUITY * EPS,
        "complex_step": COMPLEX_STEP, "fd_rounding_eps": FD_ROUNDING,
        "kink_convention": "step(0) = 0, sign(0) = 0, relu'(0) = 0, abs'(0) = 0",
        "kernel_call": "cfc_eg_<energy> and cfc_e_<energy> with n = 1, weight = 1",
    }


def _tallies(rtol: float, dps: int) -> dict[str, Tally]:
    return {
        "exact": Tally("exact", f"{rtol!r} * scale (mpmath, {dps} digits)"),
        "complex_step": Tally("complex_step", f"{rtol!r} * scale (mpmath, h = {COMPLEX_STEP!r})"),
        "finite_difference": Tally("finite_difference",
                                   "per point: 2 * (truncation estimate of D(h/4) from D(h), "
                                   "D(h/2), D(h/4)) + 2 * rounding bound at step h/4"),
        "energy": Tally("energy", f"{rtol!r} * max(1, sum of |terms of E|)"),
    }


class FamilyAuditor:
    """Checks one family's kernels at its sampled points, filling one tally per reference."""

    def __init__(self, table: FamilyTable, derived: DerivedEnergy, oracle: Oracle,
                 bound: BoundModel, kernels: Any, options: AuditOptions):
        self.table = table
        self.d = derived
        self.oracle = oracle
        self.bound = bound
        self.options = options
        self.k = len(derived.slots)
        self.probe = KernelProbe(kernels.ffi, kernels.lib, derived.name, self.k,
                                 len(derived.params))
        self.sampler = PointSampler(oracle, table, bound, options)
        self.tallies = _tallies(options.rtol, options.dps)

    def run(self) -> FamilyAudit:
        points: dict[str, int] = dict.fromkeys(KINDS, 0)
        note = ""
        if self.table.size == 0:
            note = "no instances at these sizes: nothing to check"
        elif self.k == 0:
            note = "the energy has no variable slots: nothing to differentiate"
        else:
            with mpmath.workdps(self.options.dps):
                for point in self.sampler.points():
                    points[point.kind] += 1
                    self.check(point)
        points["total"] = sum(points[k] for k in KINDS)
        return FamilyAudit(self.table.name, self.d.name, self.table.size, points, self.tallies,
                           self.d, self.table, note)

    # -- helpers
    def _where(self, point: Point, slot: int | None) -> Callable[[], dict[str, Any]]:
        def where() -> dict[str, Any]:
            i = point.instance
            names = [s.name for s in self.d.slots]
            return {
                "kind": point.kind, "instance": i, "factor": self.table.describe(i),
                "slot": names[slot] if slot is not None else None,
                "x": {n: float(v) for n, v in zip(names, point.x, strict=True)},
                "variables": {n: self.bound.element(int(self.table.slots[j][i]))
                              for j, n in enumerate(names)},
                "params": {p.name: float(self.table.params[j][i])
                           for j, p in enumerate(self.d.params)},
            }
        return where

    def check(self, point: Point) -> None:
        o, rtol = self.oracle, self.options.rtol
        p = self.sampler.params[point.instance]
        mp_args = [mpmath.mpf(float(v)) for v in point.x] + [mpmath.mpf(float(v)) for v in p]
        e_kernel, g_kernel = self.probe.grad(point.x, p)
        e_only = self.probe.energy(point.x, p)

        # kinks within rounding of 0 at this point: either side is an acceptable decision
        ambiguous: set[int] = set()
        for j, (u, terms) in enumerate(zip(o.kink_mp, o.kink_terms, strict=True)):
            val, mag = mp_call(u, mp_args), magnitude(mp_call(terms, mp_args))
            if finite_mpf(val) and mag is not None and \
                    abs(val) <= KINK_AMBIGUITY * EPS * max(1, mag):
                ambiguous.add(j)

        # energy
        e_ref = mp_call(o.energy, mp_args)
        e_mag = magnitude(mp_call(o.energy_terms, mp_args))
        tally = self.tallies["energy"]
        if not finite_mpf(e_ref) or e_mag is None:
            tally.skipped += 1
            e_scale = 1.0
        else:
            e_scale = float(max(1, e_mag))
            errs = [float(abs(mpmath.mpf(v) - e_ref)) if math.isfinite(v) else math.inf
                    for v in (e_kernel, e_only)]
            worst = max(range(2), key=lambda n: errs[n])
            tally.add(errs[worst], e_scale, rtol * e_scale, self._where(point, None),
                      (e_kernel, e_only)[worst], float(e_ref))

        for s in range(self.k):
            g = float(g_kernel[s])
            ref = mp_call(o.grads[s], mp_args)
            mag = magnitude(mp_call(o.grad_terms[s], mp_args))
            if not finite_mpf(ref) or mag is None:
                for name in ("exact", "complex_step", "finite_difference"):
                    self.tallies[name].skipped += 1
                continue
            scale = float(max(1, abs(ref), mag))
            tol = rtol * scale
            where = self._where(point, s)
            err = kernel_error(g, ref)
            best_ref = ref
            if err > tol:
                alt = o.kink_variants(s, ambiguous, mp_args, g)
                if alt is not None and alt[0] < err:
                    err, best_ref = alt
                    self.tallies["exact"].one_sided += int(err <= tol)
            self.tallies["exact"].add(err, scale, tol, where, g, float(best_ref))

            on_kink = any(s in o.kink_slots[j] for j in ambiguous)
            cs = None if on_kink else o.complex_step(s, mp_args)
            if cs is None:
                self.tallies["complex_step"].skipped += 1
            else:
                self.tallies["complex_step"].add(kernel_error(g, cs), scale, tol, where, g,
                                                float(cs))

            fd = None if on_kink else self._finite_difference(point, p, s, e_mag)
            if fd is None:
                self.tallies["finite_difference"].skipped += 1
            else:
                value, fd_tol = fd
                fd_tol = max(fd_tol, tol)
                err = abs(g - value) if math.isfinite(g) else math.inf
                self.tallies["finite_difference"].add(err, scale, fd_tol, where, g, value)

    def _finite_difference(self, point: Point, p: np.ndarray, s: int,
                           e_mag: Any) -> tuple[float, float] | None:
        """The finite difference along slot s within this instance's box, with its tolerance."""
        i = point.instance
        lo, hi = float(self.sampler.lo[i, s]), float(self.sampler.hi[i, s])
        return finite_difference(self.probe, self.oracle, point.x, p, s, lo, hi, e_mag)


# ---------------------------------------------------------------- the model
def audit(bound: BoundModel, kernels: Any, options: AuditOptions | None = None,
          derived: Sequence[DerivedEnergy] | None = None) -> AuditReport:
    """Check every family of `bound` against the compiled `kernels` (a `CompiledKernels`)."""
    options = options or AuditOptions()
    if options.samples < 1:
        raise ValueError("samples must be at least 1")
    energies = {d.name: d for d in (derived if derived is not None else derive_model(bound.model))}
    oracles: dict[str, Oracle] = {}
    families = []
    for table in bound.families:
        d = energies[table.energy]
        if d.name not in oracles:
            oracles[d.name] = Oracle(d)
        auditor = FamilyAuditor(table, d, oracles[d.name], bound, kernels, options)
        families.append(auditor.run())
    return AuditReport(bound.model.name, options, families)


__all__ = ["AuditOptions", "AuditReport", "FamilyAudit", "KernelProbe", "Oracle", "PointSampler",
           "Tally", "audit", "kink_arguments", "method"]
