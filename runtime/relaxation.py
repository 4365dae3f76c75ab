"""What `Problem.relax` and `Problem.evaluate` return: a relaxation (the final state, its
energies, the stop reason, the second-order test and the trace, by variable and by family)
and an evaluation. Kept apart from problem.py, which builds them; they read the problem
only through `RelaxedProblem`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from cfc_dsl.runtime.solvers.base import SolveResult


class RelaxedProblem(Protocol):
    """What a relaxation reads of `cfc_dsl.runtime.problem.Problem`."""

    @property
    def model(self) -> Any: ...

    @property
    def bound(self) -> Any: ...

    @property
    def family_names(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Evaluation:
    energy: float
    families: dict[str, float]
    grad: np.ndarray


@dataclass(frozen=True)
class Relaxation:
    """What `Problem.relax` returns: the final state, energies, stop reason and trace."""

    problem: RelaxedProblem
    result: SolveResult
    lipschitz: float | None = None  # the certified L the solver was given, if it needed one
    coordination: Any = None  # homotopy or an adapter moved the weights (coordinate/rounds.py)

    def __repr__(self) -> str:
        return (f"<cfc.Relaxation {self.problem.model.name!r}: energy {self.energy:.6g} after "
                f"{self.steps} steps, {self.reason}>")

    @property
    def x(self) -> np.ndarray:
        return self.result.x

    @property
    def values(self) -> dict[str, np.ndarray]:
        return self.problem.bound.split(self.result.x)

    @property
    def energy(self) -> float:
        return self.result.energy

    @property
    def energy_initial(self) -> float:
        return self.result.energy_initial

    @property
    def families(self) -> dict[str, float]:
        return dict(zip(self.problem.family_names, map(float, self.result.families), strict=False))

    @property
    def steps(self) -> int:
        return self.result.steps

    @property
    def converged(self) -> bool:
        return self.result.converged

    @property
    def reason(self) -> str:
        return self.result.reason.value

    @property
    def solver(self) -> str:
        """The solver that ran (the one `auto` picked, when it was asked)."""
        return self.result.solver

    @property
    def delta_f90(self) -> int:
        return self.result.delta_f90

    @property
    def energy_fixed(self) -> float:
        """The final state's energy under the user's own weights (equal to `energy` unless
        an adapter changed the objective)."""
        c = self.coordination
        return self.result.energy if c is None else c.energy_fixed

    @property
    def homotopy(self) -> list[dict[str, Any]] | None:
        """One entry per continuation stage (None without homotopy)."""
        c = self.coordination
        return None if c is None or c.kind != "homotopy" else [r.to_json() for r in c.rounds]

    @property
    def adapter(self) -> dict[str, Any] | None:
        """The adapter's name, options and weights history (None without an adapter)."""
        c = self.coordination
        return None if c is None or c.kind != "adapter" else c.to_json()

    @property
    def second_order(self) -> dict[str, Any] | None:
        """The second-order test at the final state: {"min_curvature", "passed",
        "lanczos_steps"} (None when the run stopped before reaching a stationary point)."""
        check = self.result.second_order
        return None if check is None else check.to_json()

    @property
    def min_curvature(self) -> float | None:
        check = self.result.second_order
        return None if check is None else check.min_curvature

    @property
    def trace(self):  # type: ignore[no-untyped-def]
        return self.result.trace.frame()

    def _repr_svg_(self) -> str | None:
        """Jupyter shows a relaxation as the factor graph coloured by the relaxed values."""
        from cfc_dsl.runtime.figures.output import repr_svg

        return repr_svg(self.problem.model, self.problem.bound, self.values)
