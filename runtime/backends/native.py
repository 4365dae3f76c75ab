"""Backends: evaluate a bound model's energy (and gradient) at a point.

`CBackend` calls the generated kernels through cffi; `PythonBackend` is the NumPy
reference built from the same SymPy expressions (the oracle for parity tests and the
fallback without a C compiler). Both return (total, per-family weighted energies, grad).
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Any, Protocol

import numpy as np

from cfc_dsl.runtime.bind.tables import BoundModel


class BackendKind(Enum):
    AUTO = "auto"
    C = "c"
    PYTHON = "python"
    CUDA = "cuda"  # runtime/backends/cuda.py


class Backend(Protocol):
    kind: BackendKind

    def energy(self, x: np.ndarray) -> tuple[float, np.ndarray]: ...

    def energy_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]: ...


def total(families: np.ndarray) -> float:
    return math.fsum(families.tolist())


class CBackend:
    kind = BackendKind.C

    def __init__(self, bound: BoundModel, ffi: Any, lib: Any):
        self.bound = bound
        self.ffi = ffi
        self._keep: list[np.ndarray] = []
        self._calls: list[tuple[Any, Any, list[Any], float]] = []
        for table in bound.families:
            args: list[Any] = [table.size]
            for arr in table.slots:
                self._keep.append(arr)
                args.append(ffi.cast("int64_t *", arr.ctypes.data))
            for arr in table.params:
                self._keep.append(arr)
                args.append(ffi.cast("double *", arr.ctypes.data))
            eg = getattr(lib, f"cfc_eg_{table.energy}")
            e = getattr(lib, f"cfc_e_{table.energy}")
            self._calls.append((eg, e, args, table.weight))

    def _x(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.shape != (self.bound.n,):  # the kernels index X and G with the bound tables
            raise ValueError(f"expected a flat vector of {self.bound.n} values, got shape "
                             f"{x.shape}")
        # from_buffer is ~1 us cheaper per array than cast(x.ctypes.data); it keeps x alive
        return x, self.ffi.from_buffer("double[]", x)

    def energy(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        x, xp = self._x(x)
        fam = np.array([w * e(*args, xp) for _, e, args, w in self._calls])
        return total(fam), fam

    def energy_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        x, xp = self._x(x)
        grad = np.zeros(x.shape[0])
        gp = self.ffi.from_buffer("double[]", grad)
        fam = np.array([w * eg(*args, w, xp, gp) for eg, _, args, w in self._calls])
        return total(fam), fam, grad


class PythonBackend:
    kind = BackendKind.PYTHON

    def __init__(self, bound: BoundModel):
        import sympy as sp

        from cfc_dsl.derive import derive_model
        from cfc_dsl.functions import NUMPY_FUNCTIONS

        self.bound = bound
        self._fns: dict[str, tuple[Any, list[Any]]] = {}
        modules = [NUMPY_FUNCTIONS, "numpy"]
        for d in derive_model(bound.model):
            args = list(d.slots) + list(d.params)
            f = sp.lambdify(args, d.expr, modules=modules)
            grads = [sp.lambdify(args, g, modules=modules) for g in d.grad]
            self._fns[d.name] = (f, grads)

    def per_instance(self, table_index: int, x: np.ndarray) -> np.ndarray:
        """Unweighted energy of every instance of one family (used to locate NaNs)."""
        table = self.bound.families[table_index]
        f, _ = self._fns[table.energy]
        with np.errstate(all="ignore"):
            values = f(*[x[s] for s in table.slots], *table.params)
        return np.broadcast_to(np.asarray(values, dtype=float), (table.size,))

    def energy(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        fam = np.array([t.weight * math.fsum(self.per_instance(i, x).tolist())
                        for i, t in enumerate(self.bound.families)])
        return total(fam), fam

    def energy_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        grad = np.zeros_like(x, dtype=float)
        fam = []
        for i, table in enumerate(self.bound.families):
            _, grads = self._fns[table.energy]
            values = [x[s] for s in table.slots]
            fam.append(table.weight * math.fsum(self.per_instance(i, x).tolist()))
            with np.errstate(all="ignore"):
                for slot, g in zip(table.slots, grads, strict=False):
                    gv = np.broadcast_to(np.asarray(g(*values, *table.params), float), (table.size,))
                    grad += table.weight * np.bincount(slot, weights=gv, minlength=x.shape[0])
        fam_arr = np.array(fam)
        return total(fam_arr), fam_arr, grad
