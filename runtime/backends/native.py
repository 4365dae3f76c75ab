"""Backends: evaluate a bound model's energy (and gradient) at a point.

`CBackend` calls the generated kernels through cffi; `PythonBackend` is the NumPy
reference built from the same SymPy expressions (the oracle for parity tests and the
fallback without a C compiler). Both return (total, per-family weighted energies, grad).
The per-family weights are an argument of every evaluation (the kernels take `w`), so they
can change between calls; None means the weights the model was bound with.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import Enum
from typing import Any, Protocol

import numpy as np

from cfc_dsl.runtime.backends.buffers import BufferPool, fsum_list
from cfc_dsl.runtime.backends.calls import bound_call as _bound_call
from cfc_dsl.runtime.backends.calls import family_array
from cfc_dsl.runtime.backends.threads import (
    Threaded,
    openmp_built,
    resolve_threads,
    threaded_call,
)
from cfc_dsl.runtime.bind.reorder import Reorder, locality
from cfc_dsl.runtime.bind.tables import BoundModel
from cfc_dsl.runtime.build.openmp import say_single_threaded

_F64 = np.dtype(np.float64)


class BackendKind(Enum):
    AUTO = "auto"
    C = "c"
    PYTHON = "python"
    CUDA = "cuda"  # runtime/backends/cuda.py


class Backend(Protocol):
    kind: BackendKind
    weights: np.ndarray  # the bound weights, used when an evaluation passes None

    def energy(self, x: np.ndarray, weights: np.ndarray | None = None
               ) -> tuple[float, np.ndarray]: ...

    def energy_and_grad(self, x: np.ndarray, weights: np.ndarray | None = None
                        ) -> tuple[float, np.ndarray, np.ndarray]: ...

    def family_grads(self, x: np.ndarray, weights: np.ndarray | None = None
                     ) -> tuple[float, np.ndarray, np.ndarray]:
        """(F, family energies, weighted gradient of each family: families x n)."""
        ...

    def hvp(self, x: np.ndarray, v: np.ndarray, weights: np.ndarray | None = None
            ) -> np.ndarray:
        """H(x) v, the Hessian of the weighted total F times v."""
        ...

    def hess_diag(self, x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """The diagonal of H(x)."""
        ...


def exact_sum(values: np.ndarray) -> float:
    """An exactly rounded sum (math.fsum); where it refuses (-inf + inf, or an intermediate
    overflow) the plain IEEE sum, NaN or +-inf, so that the NaN reporter can name the family."""
    try:
        return math.fsum(values.tolist())
    except (ValueError, OverflowError):
        with np.errstate(all="ignore"):
            return float(np.sum(values))


def total(families: np.ndarray) -> float:
    return exact_sum(families)


def bound_weights(bound: BoundModel) -> np.ndarray:
    """The weights a model was bound with (its `weight` lines and --set weight.F)."""
    return np.array([t.weight for t in bound.families], dtype=np.float64)


class CBackend:
    """The generated kernels through cffi, on `threads` threads (threads.py), over instance
    tables reordered for locality (`reorder`, bind/reorder.py). The reordering stays in
    here: x is permuted in and every gradient out, so callers see the user's indices.
    One Python thread at a time: scratch buffers are reused and cffi releases the GIL in a
    kernel, so bind one problem per thread (as the sweep runner does)."""

    kind = BackendKind.C

    def __init__(self, bound: BoundModel, ffi: Any, lib: Any, threads: int | None = None,
                 reorder: str | Reorder | None = None):
        self.bound = bound
        self.ffi = ffi
        self.lib = lib
        self.weights = bound_weights(bound)
        self.layout = locality(bound.n, tuple(t.slots for t in bound.families),
                               Reorder.parse(reorder))
        self._keep: list[np.ndarray] = []
        self._calls: list[tuple[Any, Any, list[Any], float]] = []
        self._second: list[tuple[Any, Any]] = []  # cfc_hv_*, cfc_hd_* of each family
        for i, table in enumerate(bound.families):
            args: list[Any] = [table.size]
            for arr in self.layout.slots[i]:
                self._keep.append(arr)
                args.append(ffi.cast("int64_t *", arr.ctypes.data))
            for arr in self.layout.params(i, table.params):
                arr = np.ascontiguousarray(arr, dtype=np.float64)
                self._keep.append(arr)
                args.append(ffi.cast("double *", arr.ctypes.data))
            eg = getattr(lib, f"cfc_eg_{table.energy}")
            e = getattr(lib, f"cfc_e_{table.energy}")
            self._calls.append((eg, e, args, table.weight))  # the bound weight, for benches
            self._second.append((getattr(lib, f"cfc_hv_{table.energy}"),
                                 getattr(lib, f"cfc_hd_{table.energy}")))
        self._threaded: list[Threaded | None] = []
        # per family the energy+gradient call of (w, X, G) and the energy-only call of (X),
        # every other argument bound (`_bound_call`), rebuilt with the thread count
        self._eg_plan: list[Callable[..., float]] = []
        self._e_plan: list[Callable[..., float]] = []
        self._grads = BufferPool(ffi, bound.n)  # gradients reused once their caller drops them
        self._families = family_array(ffi, lib, bound, self._calls, self._keep)
        self._all: Any = None  # cfc_eg_all while no family takes the threaded kernels
        self._energies = np.zeros(len(bound.families))  # cfc_eg_all's output, copied out
        self._ep = ffi.from_buffer("double[]", self._energies)
        self._wlast: Any = None  # the last weights array cfc_eg_all read, with its pointer
        self._wp: Any = None
        self._shape, self._wshape = (bound.n,), (len(bound.families),)
        self._perm, self._inverse = self.layout.perm, self.layout.inverse
        self.threads = resolve_threads(threads)

    @property
    def threads(self) -> int:
        """The thread count the kernels run on (1 where the library has no OpenMP)."""
        return self._threads

    @threads.setter
    def threads(self, count: int | None) -> None:
        count = resolve_threads(count)
        if count > 1 and not openmp_built(self.lib):
            say_single_threaded(count)
            count = 1
        self._threads = count
        self._threaded = [threaded_call(self.ffi, self.lib, t.energy, i, t.size, self.bound.n,
                                        self.layout, count, t.params)
                          for i, t in enumerate(self.bound.families)]
        self._eg_plan, self._e_plan = [], []
        serial = all(par is None for par in self._threaded)
        self._all = self.lib.cfc_eg_all if serial and self._families is not None else None
        for (eg, e, args, _), par in zip(self._calls, self._threaded, strict=True):
            head = tuple(args)
            self._eg_plan.append(_bound_call(eg, head) if par is None else par.eg)
            self._e_plan.append(_bound_call(e, head) if par is None else par.e)

    def _x(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        x = np.ascontiguousarray(x, _F64)
        if x.shape != self._shape:  # the kernels index X and G with the bound tables
            raise ValueError(f"expected a flat vector of {self.bound.n} values, got shape "
                             f"{x.shape}")
        if self._perm is not None:
            x = x[self._perm]  # the kernels' numbering
        # from_buffer is ~1 us cheaper per array than cast(x.ctypes.data); it keeps x alive
        return x, self.ffi.from_buffer("double[]", x)

    def _out(self, g: np.ndarray) -> np.ndarray:
        """A gradient (or rows of them) in the kernels' numbering -> the user's."""
        inverse = self._inverse
        return g if inverse is None else g[..., inverse]

    def _w(self, weights: np.ndarray | None) -> list[float]:
        w = self.weights if weights is None else weights
        if type(w) is not np.ndarray or w.dtype is not _F64:
            w = np.asarray(w, dtype=np.float64)
        if w.shape != self._wshape:
            raise ValueError(f"expected {len(self._calls)} weights, got {w.size}")
        return w.tolist()  # Python floats, as float(v) of each

    def energy(self, x: np.ndarray, weights: np.ndarray | None = None
               ) -> tuple[float, np.ndarray]:
        x, xp = self._x(x)
        fam = [w * call(xp) for call, w in zip(self._e_plan, self._w(weights), strict=True)]
        return fsum_list(fam), np.array(fam)

    def energy_and_grad(self, x: np.ndarray, weights: np.ndarray | None = None
                        ) -> tuple[float, np.ndarray, np.ndarray]:
        """(F, family energies, gradient). The gradient array is the caller's to keep; its
        buffer (and pointer) is reused by a later call only once the caller has dropped it
        (buffers.py), so a solver holding `g` across steps is safe."""
        # The hot path of every solver step, so `_x`, `_w` and `_out` are inlined here on
        # purpose (at N <= 10^3 a Python-level call costs a good part of a kernel's time);
        # anything off the fast path goes through them: the same checks, the same bits.
        x = np.ascontiguousarray(x, _F64)
        if x.shape != self._shape or self._perm is not None:
            x, xp = self._x(x)
        else:
            xp = self.ffi.from_buffer("double[]", x)
        w = self.weights if weights is None else weights
        if self._all is not None:  # every family serial: one C call (cfc_eg_all)
            if w is not self._wlast:
                if (type(w) is not np.ndarray or w.dtype is not _F64
                        or w.shape != self._wshape or not w.flags.c_contiguous):
                    w = np.array(self._w(w))
                self._wlast, self._wp = w, self.ffi.from_buffer("double[]", w)
            grad, gp = self._grads.take(False)  # cfc_eg_all zeroes it
            self._all(len(self._families), self._families, self._wp, xp, gp,
                      self._shape[0], self._ep)
            fam = self._energies.copy()
            if self._inverse is not None:
                grad = grad[self._inverse]
            return fsum_list(fam.tolist()), fam, grad
        if type(w) is not np.ndarray or w.dtype is not _F64 or w.shape != self._wshape:
            wl = self._w(w)
        else:
            wl = w.tolist()
        grad, gp = self._grads.take()
        fam = [wf * call(wf, xp, gp) for call, wf in zip(self._eg_plan, wl, strict=True)]
        if self._inverse is not None:
            grad = grad[self._inverse]
        return fsum_list(fam), np.array(fam), grad

    def family_grads(self, x: np.ndarray, weights: np.ndarray | None = None
                     ) -> tuple[float, np.ndarray, np.ndarray]:
        """One pass, each family's kernel into its own gradient row."""
        x, xp = self._x(x)
        rows = np.zeros((len(self._calls), x.shape[0]))
        fam = np.array([w * call(w, xp, self.ffi.from_buffer("double[]", row))
                        for call, w, row in zip(self._eg_plan, self._w(weights), rows,
                                                strict=True)])
        return total(fam), fam, self._out(rows)

    def hvp(self, x: np.ndarray, v: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """H(x) v of the weighted total, one `cfc_hv_*` call per family."""
        x, xp = self._x(x)
        v, vp = self._x(v)
        out = np.zeros(x.shape[0])
        op = self.ffi.from_buffer("double[]", out)
        for (_, _, args, _), (hv, _), par, w in zip(self._calls, self._second, self._threaded,
                                                    self._w(weights), strict=True):
            if par is None:
                hv(*args, w, xp, vp, op)
            else:  # threads.py: the threaded form, by the family's size
                par.hv(w, xp, vp, op)
        return self._out(out)

    def hess_diag(self, x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """diag H(x) of the weighted total, one `cfc_hd_*` call per family."""
        x, xp = self._x(x)
        out = np.zeros(x.shape[0])
        op = self.ffi.from_buffer("double[]", out)
        for (_, _, args, _), (_, hd), par, w in zip(self._calls, self._second, self._threaded,
                                                    self._w(weights), strict=True):
            if par is None:
                hd(*args, w, xp, op)
            else:
                par.hd(w, xp, op)
        return self._out(out)


def _plain_arguments(d: Any) -> tuple[list[Any], dict[Any, Any]]:
    """Positional symbols a0, a1, ... for an energy's slots and params: lambdify would let a
    slot named Sigmoid, Relu or Step shadow the NumPy helper of that name."""
    import sympy as sp

    symbols = list(d.slots) + list(d.params)
    args = [sp.Symbol(f"a{k}", real=True) for k in range(len(symbols))]
    return args, dict(zip(symbols, args, strict=True))


def _as_doubles(expr: Any) -> Any:
    """Rationals past 2^53 (2^64, 10^400 / 3) as the doubles the C printer writes: lambdify
    would print Python integers, on which NumPy's ufuncs fail (log(2^64))."""
    import sympy as sp

    big = {r: sp.Float(r, 17) for r in expr.atoms(sp.Rational)
           if max(abs(r.p), r.q) > 2 ** 53}
    return expr.xreplace(big) if big else expr


class PythonBackend:
    kind = BackendKind.PYTHON

    def __init__(self, bound: BoundModel):
        import sympy as sp

        from cfc_dsl.derive import derive_model
        from cfc_dsl.functions import NUMPY_FUNCTIONS

        self.bound = bound
        self.weights = bound_weights(bound)
        self._fns: dict[str, tuple[Any, list[Any]]] = {}
        self._hess: dict[str, list[list[Any]]] = {}
        modules = [NUMPY_FUNCTIONS, "numpy"]
        derived = derive_model(bound.model)
        self._derived = {d.name: d for d in derived}
        for d in derived:
            args, rename = _plain_arguments(d)
            f = sp.lambdify(args, _as_doubles(d.expr.xreplace(rename)), modules=modules)
            grads = [sp.lambdify(args, _as_doubles(g.xreplace(rename)), modules=modules) for g in d.grad]
            self._fns[d.name] = (f, grads)

    def per_instance(self, table_index: int, x: np.ndarray) -> np.ndarray:
        """Unweighted energy of every instance of one family (used to locate NaNs)."""
        table = self.bound.families[table_index]
        f, _ = self._fns[table.energy]
        with np.errstate(all="ignore"):
            values = f(*[x[s] for s in table.slots], *table.params)
        return np.broadcast_to(np.asarray(values, dtype=float), (table.size,))

    def _w(self, weights: np.ndarray | None) -> np.ndarray:
        w = self.weights if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != self.weights.shape:
            raise ValueError(f"expected {self.weights.size} weights, got {w.shape}")
        return w

    def energy(self, x: np.ndarray, weights: np.ndarray | None = None
               ) -> tuple[float, np.ndarray]:
        w = self._w(weights)
        fam = np.array([w[i] * exact_sum(self.per_instance(i, x))
                        for i in range(len(self.bound.families))])
        return total(fam), fam

    def family_grads(self, x: np.ndarray, weights: np.ndarray | None = None
                     ) -> tuple[float, np.ndarray, np.ndarray]:
        rows = np.zeros((len(self.bound.families), x.shape[0]))
        f, fam = self._accumulate(x, self._w(weights), list(rows))
        return f, fam, rows

    def energy_and_grad(self, x: np.ndarray, weights: np.ndarray | None = None
                        ) -> tuple[float, np.ndarray, np.ndarray]:
        grad = np.zeros_like(x, dtype=float)
        f, fam = self._accumulate(x, self._w(weights), [grad] * len(self.bound.families))
        return f, fam, grad

    def _accumulate(self, x: np.ndarray, w: np.ndarray, into: list[np.ndarray]
                    ) -> tuple[float, np.ndarray]:
        """Add each family's weighted gradient into its array of `into` (one shared array
        for the total gradient, or one row per family)."""
        fam = []
        for i, table in enumerate(self.bound.families):
            _, grads = self._fns[table.energy]
            values = [x[s] for s in table.slots]
            fam.append(w[i] * exact_sum(self.per_instance(i, x)))
            with np.errstate(all="ignore"):
                for slot, g in zip(table.slots, grads, strict=False):
                    gv = np.broadcast_to(np.asarray(g(*values, *table.params), float), (table.size,))
                    into[i] += w[i] * np.bincount(slot, weights=gv, minlength=x.shape[0])
        fam_arr = np.array(fam)
        return total(fam_arr), fam_arr

    def _hessian(self, energy: str) -> list[list[Any]]:
        """Each Hessian entry of `energy` as a NumPy function, lambdified on first use."""
        if energy not in self._hess:
            import sympy as sp

            from cfc_dsl.functions import NUMPY_FUNCTIONS

            d = self._derived[energy]
            args, rename = _plain_arguments(d)
            self._hess[energy] = [[sp.lambdify(args, _as_doubles(h.xreplace(rename)),
                                               modules=[NUMPY_FUNCTIONS, "numpy"])
                                   for h in row] for row in d.hess]
        return self._hess[energy]

    def _entries(self, i: int, x: np.ndarray) -> list[list[np.ndarray]]:
        """The unweighted Hessian entries of every instance of family `i`."""
        table = self.bound.families[i]
        values = [x[s] for s in table.slots]
        with np.errstate(all="ignore"):
            return [[np.broadcast_to(np.asarray(h(*values, *table.params), float), (table.size,))
                     for h in row] for row in self._hessian(table.energy)]

    def hvp(self, x: np.ndarray, v: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """H(x) v of the weighted total: HV[s_a] += w * sum_b H_ab V[s_b] per instance."""
        w, out = self._w(weights), np.zeros(x.shape[0])
        for i, table in enumerate(self.bound.families):
            h = self._entries(i, x)
            for a, sa in enumerate(table.slots):
                row = sum((h[a][b] * v[sb] for b, sb in enumerate(table.slots)),
                          np.zeros(table.size))
                out += w[i] * np.bincount(sa, weights=row, minlength=x.shape[0])
        return out

    def hess_diag(self, x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """diag H(x): H_aa at s_a, plus 2 H_ab where slots a < b hold the same variable."""
        w, out = self._w(weights), np.zeros(x.shape[0])
        for i, table in enumerate(self.bound.families):
            h = self._entries(i, x)
            for a, sa in enumerate(table.slots):
                d = h[a][a] + sum((np.where(sa == sb, 2.0 * h[a][b], 0.0)
                                   for b, sb in enumerate(table.slots) if b > a),
                                  np.zeros(table.size))
                out += w[i] * np.bincount(sa, weights=d, minlength=x.shape[0])
        return out
