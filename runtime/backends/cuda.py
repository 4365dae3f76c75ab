"""The CUDA backend: the Backend protocol on the GPU, over kernels from build/cuda.py.

The instance tables go to the device once, when a bound model gets its backend; each
evaluation copies x in and the gradient out.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.runtime.backends.native import BackendKind, bound_weights, total
from cfc_dsl.runtime.bind.tables import BoundModel
from cfc_dsl.runtime.build.cuda import _error_text, check_device


def _free_all(lib: Any, pointers: list[Any]) -> None:
    while pointers:
        lib.cfc_cuda_free(pointers.pop())


class CudaBackend:
    """The Backend protocol on the GPU: the same calls and results as `CBackend`.

    Index and parameter arrays are copied to the device once, here; each evaluation copies
    x in (and the gradient out) and runs one kernel per family.
    """

    kind = BackendKind.CUDA

    def __init__(self, bound: BoundModel, ffi: Any, lib: Any):
        check_device(ffi, lib)
        self.bound, self.ffi, self.lib = bound, ffi, lib
        self.weights = bound_weights(bound)  # used when an evaluation passes None
        self._pointers: list[Any] = []  # every device allocation, freed with the backend
        self._finalizer = weakref.finalize(self, _free_all, lib, self._pointers)
        self._finalizer.atexit = False  # at exit the driver frees it, and may be gone already
        self._bytes = 8 * bound.n
        self._x = self._alloc(self._bytes, "double *")
        self._g = self._alloc(self._bytes, "double *")  # G, HV or D of the call
        self._v = self._alloc(self._bytes, "double *")  # the direction of an HVP
        self._calls: list[tuple[Any, Any, list[Any], float]] = []
        self._second = [(getattr(lib, f"cfc_hv_{t.energy}"), getattr(lib, f"cfc_hd_{t.energy}"))
                        for t in bound.families]
        for table in bound.families:
            args: list[Any] = [table.size]
            args += [self._upload(np.ascontiguousarray(a, np.int64), "int64_t *") for a in table.slots]
            args += [self._upload(np.ascontiguousarray(a, np.float64), "double *")
                     for a in table.params]
            self._calls.append((getattr(lib, f"cfc_eg_{table.energy}"),
                                getattr(lib, f"cfc_e_{table.energy}"), args, table.weight))
        # the last field is the bound weight (benches read it); evaluations take `weights`

    def close(self) -> None:
        """Free the device memory now (otherwise it goes when the backend is collected)."""
        self._finalizer()

    def _check(self, code: int, what: str) -> None:
        if code != 0:
            raise CfcError(ErrorKind.ENVIRONMENT, f"CUDA failed to {what}: "
                           f"{_error_text(self.ffi, self.lib, code)}", None,
                           "check 'nvidia-smi' for the GPU's state and free memory")

    def _alloc(self, nbytes: int, ctype: str) -> Any:
        if nbytes == 0:
            return self.ffi.NULL
        out = self.ffi.new("void **")
        self._check(self.lib.cfc_cuda_alloc(out, nbytes), f"allocate {nbytes} bytes on the GPU")
        self._pointers.append(out[0])
        return self.ffi.cast(ctype, out[0])

    def _upload(self, array: np.ndarray, ctype: str) -> Any:
        ptr = self._alloc(array.nbytes, ctype)
        if array.nbytes:
            src = self.ffi.cast("void *", array.ctypes.data)
            self._check(self.lib.cfc_cuda_to_device(ptr, src, array.nbytes), "copy to the GPU")
        return ptr

    def _put_x(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.shape != (self.bound.n,):
            raise ValueError(f"expected a flat vector of {self.bound.n} values, got {x.shape}")
        if self._bytes:
            src = self.ffi.cast("void *", x.ctypes.data)
            self._check(self.lib.cfc_cuda_to_device(self._x, src, self._bytes), "copy x to the GPU")
        return x

    def _kernel_status(self) -> None:
        self._check(self.lib.cfc_cuda_status(), "run a kernel")

    def _w(self, weights: np.ndarray | None) -> list[float]:
        w = self.weights if weights is None else weights
        if len(w) != len(self._calls):
            raise ValueError(f"expected {len(self._calls)} weights, got {len(w)}")
        return [float(v) for v in w]

    def energy(self, x: np.ndarray, weights: np.ndarray | None = None
               ) -> tuple[float, np.ndarray]:
        self._put_x(x)
        fam = np.array([w * e(*args, self._x) for (_, e, args, _), w
                        in zip(self._calls, self._w(weights), strict=True)])
        self._kernel_status()
        return total(fam), fam

    def _zero_g(self) -> None:
        if self._bytes:
            self._check(self.lib.cfc_cuda_zero(self._g, self._bytes), "clear the gradient")

    def _get_g(self, out: np.ndarray) -> None:
        if self._bytes:
            dst = self.ffi.cast("void *", out.ctypes.data)
            self._check(self.lib.cfc_cuda_to_host(dst, self._g, self._bytes), "copy the gradient back")

    def energy_and_grad(self, x: np.ndarray, weights: np.ndarray | None = None
                        ) -> tuple[float, np.ndarray, np.ndarray]:
        x = self._put_x(x)
        grad = np.zeros_like(x)
        self._zero_g()
        fam = np.array([w * eg(*args, w, self._x, self._g) for (eg, _, args, _), w
                        in zip(self._calls, self._w(weights), strict=True)])
        self._kernel_status()
        self._get_g(grad)
        return total(fam), fam, grad

    def family_grads(self, x: np.ndarray, weights: np.ndarray | None = None
                     ) -> tuple[float, np.ndarray, np.ndarray]:
        """Each family's kernel once, its gradient copied out into its own row."""
        x = self._put_x(x)
        rows = np.zeros((len(self._calls), x.shape[0]))
        fam = []
        for (eg, _, args, _), w, row in zip(self._calls, self._w(weights), rows, strict=True):
            self._zero_g()
            fam.append(w * eg(*args, w, self._x, self._g))
            self._kernel_status()
            self._get_g(row)
        fam_arr = np.array(fam)
        return total(fam_arr), fam_arr, rows

    def hvp(self, x: np.ndarray, v: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """H(x) v of the weighted total: each family's `cfc_hv_*` adds into one buffer."""
        x = self._put_x(x)
        v = np.ascontiguousarray(v, dtype=np.float64)
        if v.shape != x.shape:
            raise ValueError(f"expected a direction of {x.size} values, got shape {v.shape}")
        if self._bytes:
            self._check(self.lib.cfc_cuda_to_device(self._v, self.ffi.cast("void *", v.ctypes.data),
                                                    self._bytes), "copy v to the GPU")
        self._zero_g()
        for (_, _, args, _), (hv, _), w in zip(self._calls, self._second, self._w(weights),
                                               strict=True):
            hv(*args, w, self._x, self._v, self._g)
        self._kernel_status()
        out = np.zeros_like(x)
        self._get_g(out)
        return out

    def hess_diag(self, x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """diag H(x) of the weighted total: each family's `cfc_hd_*` adds into one buffer."""
        x = self._put_x(x)
        self._zero_g()
        for (_, _, args, _), (_, hd), w in zip(self._calls, self._second, self._w(weights),
                                               strict=True):
            hd(*args, w, self._x, self._g)
        self._kernel_status()
        out = np.zeros_like(x)
        self._get_g(out)
        return out

    def device_name(self) -> str:
        buf = self.ffi.new("char[256]")
        return self.ffi.string(buf).decode() if self.lib.cfc_cuda_device_name(buf, 256) == 0 else "?"
