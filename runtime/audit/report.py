"""Audit stage, results: the options a gradient audit runs with and what it reports.

`Tally` keeps the running maxima of one reference for one family, `FamilyAudit` one family's
tallies and point counts, `AuditReport` the whole model. The checks that fill them are in
`cfc_dsl.runtime.audit.gradients`; the certificate serialises them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cfc_dsl.derive import DerivedEnergy
from cfc_dsl.runtime.bind.tables import FamilyTable

DPS = 60  # digits for every mpmath reference
RTOL = 1e-12  # |kernel - exact| <= RTOL * scale, scale = max(1, |g|, sum of |terms of g|)
REFERENCES = ("exact", "complex_step", "finite_difference", "energy")


@dataclass(frozen=True)
class AuditOptions:
    samples: int = 200  # at least this many points per family
    seed: int = 0
    rtol: float = RTOL
    dps: int = DPS


@dataclass
class Tally:
    """Running maxima for one reference of one family."""

    reference: str
    tolerance: str
    checks: int = 0
    skipped: int = 0
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0  # |kernel - reference| / scale
    max_tolerance: float = 0.0  # the largest tolerance used, relative to scale
    worst_ratio: float = 0.0  # max |kernel - reference| / tolerance; pass iff <= 1
    worst: dict[str, Any] | None = None
    failures: int = 0
    one_sided: int = 0  # exact only: kink points where rounding picked the other side

    def add(self, error: float, scale: float, tol: float, where: Callable[[], dict[str, Any]],
            kernel: float, reference: float) -> None:
        self.checks += 1
        ratio = error / tol if tol > 0 else (0.0 if error == 0 else math.inf)
        if not math.isfinite(error):
            ratio = math.inf
        self.max_abs_error = max(self.max_abs_error, error)
        self.max_rel_error = max(self.max_rel_error, error / scale)
        self.max_tolerance = max(self.max_tolerance, tol / scale)
        if ratio > 1:
            self.failures += 1
        if self.worst is None or ratio > self.worst_ratio:
            self.worst_ratio = ratio
            self.worst = {**where(), "kernel": kernel, "reference": reference,
                          "abs_error": error, "rel_error": error / scale, "tolerance": tol}

    @property
    def passed(self) -> bool:
        return self.failures == 0

    def to_json(self) -> dict[str, Any]:
        return {"checks": self.checks, "skipped": self.skipped, "max_abs_error": self.max_abs_error,
                "max_rel_error": self.max_rel_error, "tolerance": self.tolerance,
                "max_tolerance": self.max_tolerance, "worst_ratio": self.worst_ratio,
                "failures": self.failures, "one_sided": self.one_sided, "passed": self.passed,
                "worst": self.worst}


@dataclass
class FamilyAudit:
    family: str
    energy: str
    instances: int
    points: dict[str, int]
    tallies: dict[str, Tally]
    derived: DerivedEnergy = field(repr=False)
    table: FamilyTable = field(repr=False)
    note: str = ""

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.tallies.values())

    def worst(self) -> tuple[str, dict[str, Any]] | None:
        """The reference and point with the largest error/tolerance ratio."""
        ranked = [(t.worst_ratio, name, t.worst) for name, t in self.tallies.items() if t.worst]
        if not ranked:
            return None
        ratio, name, worst = max(ranked, key=lambda r: (r[0], -REFERENCES.index(r[1])))
        return name, worst  # type: ignore[return-value]

    def to_json(self) -> dict[str, Any]:
        worst = self.worst()
        return {"energy": self.energy, "instances": self.instances, "points": self.points,
                "checks": {name: t.to_json() for name, t in self.tallies.items()},
                "passed": self.passed, "note": self.note,
                "worst": {"check": worst[0], **worst[1]} if worst else None}


@dataclass
class AuditReport:
    model: str
    options: AuditOptions
    families: list[FamilyAudit]

    @property
    def passed(self) -> bool:
        return all(f.passed for f in self.families)

    @property
    def failures(self) -> list[FamilyAudit]:
        return [f for f in self.families if not f.passed]
