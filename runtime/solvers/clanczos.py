"""The second-order test's Lanczos steps in C, for small problems whose per-step cost is
Python (issue 12: at N = 10^3 the test was ~25% of a default newton relaxation, most of it
`curvature._steps`' bookkeeping: one HVP call through the backend per step plus a mask
multiply, a dot, two classical Gram-Schmidt passes as four einsum calls and a norm).

`cfc_lanczos` below is `curvature._steps` line for line, from the start vector the caller
computes as before: each product adds every family's HVP through its kernel descriptor
(cgloop.PRODUCTS' `hvp`, bit-equal to `CBackend.hvp`); the elementwise updates are the same
IEEE operations (no contraction: -ffp-contract=off); the dots sum left to right where
NumPy's einsum runs its unrolled loop, so alphas, betas and the basis agree to round-off
(tests/test_c_lanczos.py). The tridiagonal eigenproblem and the Ritz vectors stay in
`curvature.lanczos`, shared by both paths.

It applies where cgloop's CG does (`cgloop.objective_tables`); else (threaded families, a
renumbering, another objective, CFC_C_LOOPS=0, no compiler) `for_objective` returns None and
the Python steps run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cfc_dsl.runtime.build.loops import loop_library
from cfc_dsl.runtime.solvers.cgloop import FLAGS, PRODUCTS, objective_tables

CDEF = """
int64_t cfc_lanczos(int64_t nf, const uintptr_t *ks, const int64_t *sizes,
    const uintptr_t *args, const double *w, int64_t n, const double *x,
    const unsigned char *mask, int64_t k, double *basis, double *alphas, double *betas,
    double *work);
"""
SOURCE = PRODUCTS + r"""
/* c[i] = dot(rows + i n, v, n) for i < count, four rows per pass over v: four independent
   sums (each still left to right, so each is dot's to the bit) instead of one chain of
   dependent additions at a time */
static void dots(const double *rows, int64_t count, int64_t n, const double *v, double *c) {
    int64_t i = 0;
    for (; i + 4 <= count; i += 4) {
        const double *a = rows + i * n, *b = a + n, *d = b + n, *e = d + n;
        double ta = 0.0, tb = 0.0, td = 0.0, te = 0.0;
        for (int64_t l = 0; l < n; l++) {
            ta += a[l] * v[l]; tb += b[l] * v[l]; td += d[l] * v[l]; te += e[l] * v[l];
        }
        c[i] = ta; c[i + 1] = tb; c[i + 2] = td; c[i + 3] = te;
    }
    for (; i < count; i++) c[i] = dot(rows + i * n, v, n);
}

/* curvature._steps: basis row 0 holds the unit start vector q on entry; rows 0..m-1, alphas
   0..m-1 and betas 0..m-2 out. Returns m, or -(j+1) when the product of step j is not
   finite. mask: 0/1 bytes (NumPy bools). work: 2 n + k doubles. */
int64_t cfc_lanczos(int64_t nf, const uintptr_t *ks, const int64_t *sizes,
    const uintptr_t *args, const double *w, int64_t n, const double *x,
    const unsigned char *mask, int64_t k, double *basis, double *alphas, double *betas,
    double *work) {
    double *v = work, *t = work + n, *c = work + 2 * n, largest = 0.0;
    for (int64_t j = 0; j < k; j++) {
        const double *q = basis + j * n;
        hvp(nf, ks, sizes, args, w, x, q, v, n);
        int finite = 1;
        for (int64_t i = 0; i < n; i++) {
            v[i] = v[i] * (double)mask[i];
            finite &= isfinite(v[i]) != 0;
        }
        if (!finite) return -(j + 1);
        alphas[j] = dot(v, q, n);
        if (fabs(alphas[j]) > largest) largest = fabs(alphas[j]);
        for (int pass = 0; pass < 2; pass++) {  /* classical Gram-Schmidt, twice */
            dots(basis, j + 1, n, v, c);
            memset(t, 0, (size_t)n * sizeof(double));
            for (int64_t i = 0; i <= j; i++) {
                const double *b = basis + i * n;
                for (int64_t l = 0; l < n; l++) t[l] += c[i] * b[l];
            }
            for (int64_t l = 0; l < n; l++) v[l] -= t[l];
        }
        double beta = sqrt(dot(v, v, n));
        if (j + 1 == k || beta <= 1e-12 * (largest > 1.0 ? largest : 1.0)) return j + 1;
        betas[j] = beta;
        double *next = basis + (j + 1) * n;
        for (int64_t l = 0; l < n; l++) next[l] = v[l] / beta;
    }
    return 0;
}
"""


class LanczosLoop:
    """`curvature._steps` in C for one objective (`for_objective` says whether it applies)."""

    def __init__(self, ffi: Any, lib: Any, tables: tuple[Any, ...], objective: Any):
        self.ffi, self.lib, self.objective = ffi, lib, objective
        self.ks, self.sizes, self.args = tables
        self.products = 0  # HVP passes so far (bench/small_relax.py counts them)

    @classmethod
    def for_objective(cls, objective: Any) -> LanczosLoop | None:
        found = objective_tables(objective)
        if found is None:
            return None
        built = loop_library("lanczos", SOURCE, CDEF, FLAGS)
        return None if built is None else cls(*built, found, objective)

    def call(self, *args: Any) -> int:
        """`cfc_lanczos` itself (the one place it is called: a bench times it here)."""
        return int(self.lib.cfc_lanczos(*args))

    def steps(self, x: np.ndarray, mask: np.ndarray, q: np.ndarray, k: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, bool]:
        """(alphas, betas, basis rows, steps taken, whether every product was finite) of
        at most k steps from the unit vector q, as `curvature._steps` returns them."""
        n, ffi = x.size, self.ffi
        basis, alphas, betas = np.empty((k, n)), np.empty(k), np.empty(max(k - 1, 0))
        basis[0] = q
        f = lambda a: ffi.from_buffer("double[]", np.ascontiguousarray(a, np.float64))  # noqa: E731
        m = self.call(
            self.ks.size, ffi.from_buffer("uintptr_t[]", self.ks),
            ffi.from_buffer("int64_t[]", self.sizes), ffi.from_buffer("uintptr_t[]", self.args),
            f(self.objective.weights), n, f(x),
            ffi.from_buffer("unsigned char[]", np.ascontiguousarray(mask, np.bool_)), int(k),
            f(basis), f(alphas), f(betas), f(np.empty(2 * n + k)))
        self.products += abs(m)
        if m < 0:  # the product of step -m was not finite: the steps before it, as Python
            return alphas[:-m - 1], betas[:-m - 1], basis, -m, False
        return alphas[:m], betas[:m - 1], basis, m, True


__all__ = ["CDEF", "SOURCE", "LanczosLoop"]
