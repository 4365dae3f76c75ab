"""newton's inner CG solve in C, for small problems whose per-iteration cost is Python
(issue 12 item 4: at N = 10^3 newton spent ~90% of its wall time outside the kernels, most
of it in `_Model._steihaug`'s loop: one HVP call through the backend per iteration plus
the vector updates). The loop below is `_steihaug` line for line: Jacobi-preconditioned
CG on the free variables (the caller passes the preconditioner already masked, as
`_Model._jacobi` returns it), stopping at the forcing-term tolerance, at negative
curvature or at the trust-region boundary (`_to_boundary`). Each product adds every
family's HVP through its kernel descriptor (`cfc_kernel_<energy>()->hv` on the whole run,
`only` = -1: the very kernel `cfc_hv_<energy>` runs, in the backend's family order, with
the same weights), so H p is bit-equal to `CBackend.hvp`'s. The elementwise updates are
the same IEEE operations in the same order (no contraction: -ffp-contract=off); the dot
products sum left to right where `vectors.dot` uses np.einsum's unrolled loop, so the
iterates agree to round-off, not bit for bit (tests/test_c_cg.py).

It serves where the backend's HVP is exactly these kernels: a plain `Objective` on a
`CBackend` whose families all run serial with the user's numbering; else (threaded
families, a renumbering, another objective, CFC_C_LOOPS=0, no compiler) `for_objective`
returns None and `_steihaug` runs in Python.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from cfc_dsl.runtime.build.loops import loop_library

# the descriptor as templates/kernels.c.j2 declares it (tests/test_c_cg.py holds the two
# equal): `slots`, `hv` and (tronloop.py) `hd` are used
KERNEL_STRUCT = """\
typedef void (*cfc_hvr_fn)(int64_t lo, int64_t hi, const int64_t *const *s, const double *const *p, double weight, const double *X, const double *V, double *HV, int only);
typedef void (*cfc_hdr_fn)(int64_t lo, int64_t hi, const int64_t *const *s, const double *const *p, double weight, const double *X, double *D, int only);
struct cfc_kernel {
    int64_t slots, params;
    const unsigned char *terms;
    void *e;
    void *eg;
    cfc_hvr_fn hv;
    cfc_hdr_fn hd;
};
"""
CDEF = """
int64_t cfc_newton_cg(int64_t nf, const uintptr_t *ks, const int64_t *sizes,
    const uintptr_t *args, const double *w, int64_t n, const double *x, const double *free,
    const double *minv, const double *s, double *r, double delta, double tol,
    int64_t max_cg, double *d, double *hd, double *work, int64_t *products);
"""
PRODUCTS = r"""
#include <math.h>
#include <stdint.h>
#include <string.h>
""" + KERNEL_STRUCT + r"""
/* H v of the weighted total into hv: every family's kernel on all its instances, in order */
static void hvp(int64_t nf, const uintptr_t *ks, const int64_t *sizes, const uintptr_t *args,
                const double *w, const double *x, const double *v, double *hv, int64_t n) {
    memset(hv, 0, (size_t)n * sizeof(double));
    for (int64_t f = 0; f < nf; f++) {
        const struct cfc_kernel *k = (const struct cfc_kernel *)ks[f];
        const void *const *a = (const void *const *)args[f];
        k->hv(0, sizes[f], (const int64_t *const *)a, (const double *const *)(a + k->slots),
              w[f], x, v, hv, -1);
    }
}

/* diag H of the weighted total into d, the same way (tronloop.py's Jacobi preconditioner);
   inline: the loops that take no diagonal compile it away without a warning */
static inline void hdiag(int64_t nf, const uintptr_t *ks, const int64_t *sizes,
                         const uintptr_t *args, const double *w, const double *x, double *d,
                         int64_t n) {
    memset(d, 0, (size_t)n * sizeof(double));
    for (int64_t f = 0; f < nf; f++) {
        const struct cfc_kernel *k = (const struct cfc_kernel *)ks[f];
        const void *const *a = (const void *const *)args[f];
        k->hd(0, sizes[f], (const int64_t *const *)a, (const double *const *)(a + k->slots),
              w[f], x, d, -1);
    }
}

static double dot(const double *a, const double *b, int64_t n) {
    double t = 0.0;
    for (int64_t i = 0; i < n; i++) t += a[i] * b[i];
    return t;
}
"""
SOURCE = PRODUCTS + r"""
/* newton.py's _to_boundary; Python's max(v, 0.0) keeps a NaN v, as this does */
static double to_boundary(double zz, double zp, double pp, double dd) {
    if (pp == 0.0) return 0.0;
    double v = zp * zp + pp * (dd - zz);
    if (0.0 > v) v = 0.0;
    return (-zp + sqrt(v)) / pp;
}

/* newton.py's _Model._steihaug: d, hd out; r overwritten; returns 1 when CG stopped on the
   boundary (length or negative curvature), else 0. work: 5 n doubles. */
int64_t cfc_newton_cg(int64_t nf, const uintptr_t *ks, const int64_t *sizes,
    const uintptr_t *args, const double *w, int64_t n, const double *x, const double *free,
    const double *minv, const double *s, double *r, double delta, double tol,
    int64_t max_cg, double *d, double *hd, double *work, int64_t *products) {
    double *z = work, *y = work + n, *p = work + 2 * n, *hpf = work + 3 * n, *hp = work + 4 * n;
    memcpy(z, s, (size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) { y[i] = r[i] * minv[i]; p[i] = y[i]; hd[i] = 0.0; }
    double ry = dot(r, y, n), dd = delta * delta, zz = dot(s, s, n);
    for (int64_t it = 0; it < max_cg; it++) {
        hvp(nf, ks, sizes, args, w, x, p, hpf, n);
        ++*products;
        for (int64_t i = 0; i < n; i++) hp[i] = hpf[i] * free[i];
        double curvature = dot(p, hp, n), pp = dot(p, p, n), zp = dot(z, p, n);
        double a = ry / curvature;
        if (curvature <= 0.0 || !isfinite(curvature) || zz + 2.0 * a * zp + a * a * pp >= dd) {
            double tau = to_boundary(zz, zp, pp, dd);
            for (int64_t i = 0; i < n; i++) {
                d[i] = z[i] - s[i] + tau * p[i];
                hd[i] = hd[i] + tau * hpf[i];
            }
            return 1;
        }
        for (int64_t i = 0; i < n; i++) {
            z[i] += p[i] * a;
            hd[i] += hpf[i] * a;
            r[i] -= hp[i] * a;
        }
        zz += a * (2.0 * zp + a * pp);
        if (sqrt(dot(r, r, n)) <= tol) break;
        for (int64_t i = 0; i < n; i++) y[i] = r[i] * minv[i];
        double ry_new = dot(r, y, n), beta = ry_new / ry;
        for (int64_t i = 0; i < n; i++) { p[i] *= beta; p[i] += y[i]; }
        ry = ry_new;
    }
    for (int64_t i = 0; i < n; i++) d[i] = z[i] - s[i];
    return 0;
}
"""
FLAGS = ("-ffp-contract=off",)  # a * b + c as two roundings, as NumPy's does


def one_call_families(backend: Any) -> Any | None:
    """The backend's `cfc_family[]` table where it runs every family's serial kernel in one
    call with the user's numbering (what a C loop may call in its place); else None. Every C
    loop (this module's, cloop.py's, tronloop.py's, clanczos.py's) asks this one question; it
    lives here, not in cloop.py, so that the second-order test (curvature.py, imported by
    solvers/base.py) reaches it without importing cloop, which imports base."""
    from cfc_dsl.runtime.backends.native import CBackend

    if type(backend) is not CBackend:  # a wrapper (a bench's counter) sees every call
        return None
    families = getattr(backend, "_families", None)
    layout = getattr(backend, "layout", None)
    if getattr(backend, "_all", None) is None or families is None or layout is None \
            or layout.perm is not None:
        return None
    return families


_TABLES: weakref.WeakKeyDictionary[Any, tuple[Any, tuple[Any, ...]]] = (
    weakref.WeakKeyDictionary())  # backend -> (its family table, the arrays below)


def tables(backend: Any) -> tuple[Any, ...] | None:
    """(descriptor addresses, family sizes, table-pointer addresses) where the backend's
    HVP is every family's serial kernel with the user's numbering; else None."""
    families = one_call_families(backend)
    if families is None:
        return None
    known = _TABLES.get(backend)
    if known is not None and known[0] is families:
        return known[1]
    ffi, lib, tables = backend.ffi, backend.lib, backend.bound.families
    if not all(hasattr(lib, f"cfc_kernel_{t.energy}") for t in tables):
        return None
    ks = np.array([int(ffi.cast("uintptr_t", getattr(lib, f"cfc_kernel_{t.energy}")()))
                   for t in tables], dtype=np.uint64)
    sizes = np.array([families[f].n for f in range(len(tables))], dtype=np.int64)
    args = np.array([int(ffi.cast("uintptr_t", families[f].args)) for f in range(len(tables))],
                    dtype=np.uint64)
    found = (ks, sizes, args)
    _TABLES[backend] = (families, found)
    return found


def objective_tables(objective: Any) -> tuple[Any, ...] | None:
    """`tables` of the objective's backend where its HVP is exactly `hvp` above: a plain
    `Objective` with Needs.HVP whose float64 weights are one per family; else None. Every
    C loop that takes Hessian-vector products asks this one question."""
    from cfc_dsl.runtime.objective import Objective
    from cfc_dsl.runtime.solvers.registry import Needs

    if type(objective) is not Objective or Needs.HVP not in objective.needs:
        return None  # another objective's HVP may differ; without HVP Python raises
    w = getattr(objective, "weights", None)
    found = tables(getattr(objective, "backend", None))
    if found is None or not isinstance(w, np.ndarray) or w.dtype != np.float64 \
            or w.shape != found[0].shape:
        return None
    return found


class CgLoop:
    """`_Model._steihaug` in C for one objective (`for_objective` says whether it applies)."""

    def __init__(self, ffi: Any, lib: Any, tables: tuple[Any, ...], objective: Any):
        self.ffi, self.lib, self.objective = ffi, lib, objective
        self.ks, self.sizes, self.args = tables
        self._work = np.empty(0)
        self._count = np.zeros(1, dtype=np.int64)

    @classmethod
    def for_objective(cls, objective: Any) -> CgLoop | None:
        found = objective_tables(objective)
        if found is None:
            return None
        built = loop_library("newton-cg", SOURCE, CDEF, FLAGS)
        return None if built is None else cls(*built, found, objective)

    def steihaug(self, x: np.ndarray, free: np.ndarray, minv: np.ndarray, s: np.ndarray,
                 r: np.ndarray, delta: float, tol: float, max_cg: int
                 ) -> tuple[np.ndarray, np.ndarray, bool, int]:
        """(d, Hd, whether it stopped on the boundary, products), as `_steihaug`; r is
        overwritten (r must be a contiguous float64 array)."""
        n, ffi = x.size, self.ffi
        if self._work.size != 5 * n:
            self._work = np.empty(5 * n)
        d, hd = np.empty(n), np.empty(n)
        self._count[0] = 0
        f = lambda a: ffi.from_buffer("double[]", np.ascontiguousarray(a, np.float64))  # noqa: E731
        w = np.ascontiguousarray(self.objective.weights)
        boundary = self.lib.cfc_newton_cg(
            self.ks.size, ffi.from_buffer("uintptr_t[]", self.ks),
            ffi.from_buffer("int64_t[]", self.sizes), ffi.from_buffer("uintptr_t[]", self.args),
            f(w), n, f(x), f(free), f(minv), f(s), ffi.from_buffer("double[]", r),
            float(delta), float(tol), int(max_cg), f(d), f(hd), f(self._work),
            ffi.from_buffer("int64_t[]", self._count))
        return d, hd, bool(boundary), int(self._count[0])


__all__ = ["PRODUCTS", "CgLoop", "KERNEL_STRUCT", "objective_tables", "one_call_families",
           "tables"]
