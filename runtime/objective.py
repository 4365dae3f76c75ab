"""The objective a solver sees: F(x) = sum_f w_f E_f(x) over a bound problem's backend, with
the per-family weights `w` as a live runtime array (homotopy and adapters change it between
steps; nothing recompiles or rebinds), and what the solver's declared needs asked for: a
certified Lipschitz constant, per-family gradients from the same evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, Protocol, overload

import numpy as np

from cfc_dsl.runtime.solvers.registry import Needs


class WeightedBackend(Protocol):
    """The backend calls the objective makes; `weights` is one float per family."""

    def energy(self, x: np.ndarray, weights: np.ndarray | None = None
               ) -> tuple[float, np.ndarray]: ...

    def energy_and_grad(self, x: np.ndarray, weights: np.ndarray | None = None
                        ) -> tuple[float, np.ndarray, np.ndarray]: ...

    def family_grads(self, x: np.ndarray, weights: np.ndarray | None = None
                     ) -> tuple[float, np.ndarray, np.ndarray]: ...

    def hvp(self, x: np.ndarray, v: np.ndarray, weights: np.ndarray | None = None
            ) -> np.ndarray: ...

    def hess_diag(self, x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray: ...


FamilyEvaluation = tuple[float, np.ndarray, np.ndarray, np.ndarray]
"""(F, weighted family energies, gradient, weighted per-family gradients (families x n))."""


def family_grad_norms(family_grads: np.ndarray) -> np.ndarray:
    """The Euclidean norm of each family's weighted gradient."""
    return np.sqrt(np.einsum("fn,fn->f", family_grads, family_grads))


class Objective:
    """F, its gradient and (when declared) per-family gradients at the current weights."""

    def __init__(self, backend: WeightedBackend, weights: np.ndarray, lower: np.ndarray,
                 upper: np.ndarray, family_names: tuple[str, ...],
                 nonfinite: Callable[[np.ndarray, int], Exception], needs: Needs = Needs.NONE,
                 lipschitz: float | None = None):
        self.backend = backend
        self.weights = weights  # the problem's own array: a change is seen at the next call
        self.lower, self.upper, self.family_names = lower, upper, family_names
        self.needs = needs
        self._hvp_needs: Needs | None = None  # the `needs` hvp last found to declare HVP
        self.lipschitz = lipschitz  # set when needs has LIPSCHITZ (finite, >= 0)
        self._nonfinite = nonfinite
        self.evaluations = 0  # energy evaluations so far (the trace's `evaluations` column)

    def energy(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        self.evaluations += 1
        return self.backend.energy(x, self.weights)

    @overload
    def energy_and_grad(self, x: np.ndarray, per_family: Literal[False] = False
                        ) -> tuple[float, np.ndarray, np.ndarray]: ...

    @overload
    def energy_and_grad(self, x: np.ndarray, per_family: Literal[True]) -> FamilyEvaluation: ...

    def energy_and_grad(self, x: np.ndarray, per_family: bool = False
                        ) -> tuple[float, np.ndarray, np.ndarray] | FamilyEvaluation:
        """(F, family energies, gradient); with `per_family`, also each family's weighted
        gradient, from the same pass (one kernel call per family, each into its own row)."""
        self.evaluations += 1
        if not per_family:
            return self.backend.energy_and_grad(x, self.weights)
        if Needs.PER_FAMILY not in self.needs:
            raise RuntimeError("per-family gradients were not declared: add Needs.PER_FAMILY "
                               "to the solver's needs")
        f, fam, rows = self.backend.family_grads(x, self.weights)
        return f, fam, rows.sum(axis=0), rows

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """H(x) v, the Hessian of F at the live weights times v (generated kernels)."""
        if self.needs is not self._hvp_needs:  # the Flag test once per `needs`, not per call
            self._require_hvp()
            self._hvp_needs = self.needs
        return self.backend.hvp(x, np.ascontiguousarray(v, dtype=np.float64), self.weights)

    def hess_diag(self, x: np.ndarray) -> np.ndarray:
        """The diagonal of H(x) at the live weights."""
        self._require_hvp()
        return self.backend.hess_diag(x, self.weights)

    def _require_hvp(self) -> None:
        if Needs.HVP not in self.needs:
            raise RuntimeError("Hessian-vector products were not declared: add Needs.HVP to "
                               "the solver's needs")

    def instances(self) -> tuple[tuple[np.ndarray, ...], ...]:
        """Each family's instance table: one int64 array of flat variable indices per slot
        (the variables of instance k are `slots[a][k]`), for solvers that follow the graph."""
        if Needs.INSTANCES not in self.needs:
            raise RuntimeError("instance tables were not declared: add Needs.INSTANCES to "
                               "the solver's needs")
        backend: Any = self.backend  # every backend keeps the BoundModel it evaluates
        return tuple(table.slots for table in backend.bound.families)

    def check_finite(self, x: np.ndarray, energy: float, grad: np.ndarray | None,
                     step: int) -> None:
        # math.isfinite and the array's own all(): the test np.isfinite / np.all make,
        # without their dispatch (once per accepted step)
        if math.isfinite(energy) and (grad is None or np.isfinite(grad).all()):
            return
        raise self._nonfinite(x, step)
