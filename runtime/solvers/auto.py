"""`auto`, the default solver: picks one registered solver per problem from what
`bench/solvers.py` measured (docs/solvers.md), runs it, and says which and why (the result's
`solver` and `auto`). Models with a kink (margin_hinge; relu/abs to the first power, step or
sign in a derived energy) go to `prox`, which handles kinks by their exact prox; smooth
models go to `newton`, which reached tol in the fewest steps on every smooth benchmark. The
shared options are passed on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from cfc_dsl.runtime.solvers.base import Progress, SolveResult, SolverObjective, StopOptions
from cfc_dsl.runtime.solvers.proxrules import has_kink
from cfc_dsl.runtime.solvers.registry import SOLVERS, Needs, register

# The standard-library energies with a kink (tests/test_prox_admm.py checks this against
# `has_kink` of their derived expressions; only user energies are derived here).
KINKED_STDLIB = frozenset({"margin_hinge"})


@dataclass(frozen=True)
class AutoOptions(StopOptions):
    pass


def kinked_families(objective: SolverObjective) -> list[str]:
    """The families whose energy has a kink, from the derived expressions."""
    bound = getattr(getattr(objective, "backend", None), "bound", None)
    if bound is None:
        return []
    specs = {e.name: e for e in bound.model.energies}
    kinked: dict[str, bool] = {}
    out = []
    for table in bound.families:
        if table.size == 0:
            continue
        if table.energy not in kinked:
            spec = specs[table.energy]
            if spec.builtin:
                kinked[spec.name] = spec.name in KINKED_STDLIB
            else:  # SymPy only for a user's own energies: a stdlib model imports none
                from cfc_dsl.derive import derive_energy, symbol

                derived = derive_energy(spec, specs)
                kinked[spec.name] = has_kink(derived.expr, {symbol(s) for s in spec.slots})
        if kinked[table.energy]:
            out.append(table.name)
    return out


def choose(objective: SolverObjective) -> tuple[str, dict[str, Any], str]:
    """(solver, its own options, the reason)."""
    kinked = kinked_families(objective)
    n = int(objective.lower.size)
    if kinked and "prox" in SOLVERS:
        names = ", ".join(f"'{k}'" for k in kinked[:3]) + (" ..." if len(kinked) > 3 else "")
        return "prox", {"smooth": False}, (f"non-smooth famil{'ies' if len(kinked) > 1 else 'y'} "
                                           f"{names}: kinks take exact proximal steps")
    # bench/solvers.py (docs/solvers.md): on every smooth scenario, from 2 variables to
    # 10^6, Newton-CG on the generated HVP kernels took the fewest steps; with Jacobi-
    # preconditioned CG it took 0.16-0.19x L-BFGS-B's time on chain and random at 10^5
    # (pgd was faster on the chains, 0.16x, but stalls above tol on the random workload)
    if "newton" in SOLVERS and Needs.HVP in getattr(objective, "needs", Needs.NONE):
        return "newton", {}, (f"smooth, n = {n}: Newton-CG on the generated Hessian-vector "
                              "products reached tol in the fewest steps on every smooth "
                              "benchmark")
    fallback = "lbfgsb" if "lbfgsb" in SOLVERS else "pgd"
    return fallback, {}, f"smooth, n = {n}"


@register
class Auto:
    name = "auto"
    description = ("the default: picks a solver per problem (prox for kinks, newton for "
                   "smooth models) and reports which and why")
    Options = AutoOptions

    def needs(self, options: AutoOptions) -> Needs:
        # whatever the chosen one may use, except L
        return Needs.HVP | Needs.PER_FAMILY | Needs.INSTANCES

    def solve(self, objective: SolverObjective, x0: np.ndarray, options: AutoOptions,
              progress: Progress | None = None) -> SolveResult:
        name, own, reason = choose(objective)
        cls = SOLVERS[name]
        shared = {f.name: getattr(options, f.name) for f in dataclasses.fields(StopOptions)}
        chosen = cls.Options(**shared, **own)
        result = cls().solve(objective, x0, chosen, progress)
        return dataclasses.replace(result, auto=reason)
