"""newton's whole step loop in C, for small problems whose per-step cost is Python (issue 12
item 4: at N = 10^3 newton spent ~75% of its wall time outside the kernels with only its CG
solve in C, cgloop.py; the rest was the Cauchy and projected searches, ~190 small NumPy
calls per run, and the accept/radius bookkeeping). The loop below is `TrustRegionNewton.
solve`'s trial loop and `_Model` (newton.py) line for line: the Cauchy search along -g with
Hg saved where the box does not cut, the subspace solves (the Jacobi preconditioner from one
Hessian-diagonal pass per step, `cfc_newton_cg` of cgloop.py, the projected search), the
clip, one `cfc_eg_all` pass per trial, the actual/predicted ratio with its round-off floor,
the radius update and the accept test. Python keeps what only it may do: `TronLoop.advance`
hands each accepted state, in order, to `Run.accept`, which checks, traces and counts it as
after a Python step; the second-order test, escapes, the fresh radius after an escape and
the result stay with newton.py.

Products and passes are the kernels' own (descriptors of every family, `cfc_eg_all`), the
elementwise arithmetic is the same IEEE operations in the same order (-ffp-contract=off),
and sums run left to right where NumPy's einsum and mean use their own orders: the iterates
agree with the Python loop to round-off, with the same steps and stop reasons on the tests'
problems (tests/test_tron_loop.py). It serves where the pgd loop does (cloop.py): a plain
Objective with HVP on a C backend on its serial one-call path with the user's numbering, and
no tracker but the trace nor a rejected-trial observer, which see each trial as it happens.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cfc_dsl.runtime.build.loops import loop_library
from cfc_dsl.runtime.solvers import cgloop, cloop
from cfc_dsl.runtime.solvers.base import Run, StopReason

CDEF = """
int64_t cfc_tron_loop(uintptr_t eg_all, uintptr_t fam, int64_t nf, const uintptr_t *ks,
    const int64_t *sizes, const uintptr_t *args, const double *w, int64_t n,
    const double *lo, const double *hi, const double *x0, const double *g0, double f0,
    const double *e0, const double *opts, const int64_t *iopts, double *state,
    int64_t *istate, double *xs, double *gs, double *fs, double *es, double *ts,
    double *ps, int64_t *bts, int64_t *evs, double *work);
"""
STEP = r"""
#define MU0 0.01  /* newton.py's _MU0 */
#define EPS 2.220446049250313e-16

/* Python's min(a, b) and max(a, b): the first argument unless the second is smaller/larger */
static double py_min(double a, double b) { return b < a ? b : a; }
static double py_max(double a, double b) { return b > a ? b : a; }

static int inside(const double *z, const double *lo, const double *hi, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!(z[i] >= lo[i] && z[i] <= hi[i])) return 0;
    return 1;
}

struct tron {  /* one model q(s) = g.s + s.Hs/2 at x (newton.py's _Model) */
    int64_t nf, n, max_cg, max_subspace, precondition, have_hg, have_minv;
    const uintptr_t *ks, *args;
    const int64_t *sizes;
    const double *w, *lo, *hi, *x, *g;
    double cg_tol, tol;
    int64_t products;  /* HVP and Hessian-diagonal passes */
    double *hg, *minv, *free, *mfree, *r, *d, *hd, *t, *ht, *xc, *full, *cg;
};

static void hv(struct tron *T, const double *v, double *out) {
    T->products++;
    hvp(T->nf, T->ks, T->sizes, T->args, T->w, T->x, v, out, T->n);
}

static double model_q(const struct tron *T, const double *s, const double *hs) {
    return dot(T->g, s, T->n) + 0.5 * dot(s, hs, T->n);
}

/* _Model.cauchy's trial(a) into s, hs; returns ok */
static int cauchy_trial(struct tron *T, double a, double delta, double gg, double *s,
                        double *hs) {
    const int64_t n = T->n;
    for (int64_t i = 0; i < n; i++) T->full[i] = T->x[i] - a * T->g[i];
    if (inside(T->full, T->lo, T->hi, n)) {
        if (!T->have_hg) { hv(T, T->g, T->hg); T->have_hg = 1; }
        for (int64_t i = 0; i < n; i++) { s[i] = -a * T->g[i]; hs[i] = -a * T->hg[i]; }
        double gs = -a * gg;
        return a * sqrt(gg) <= delta && gs + 0.5 * dot(s, hs, n) <= MU0 * gs;
    }
    for (int64_t i = 0; i < n; i++) s[i] = clip(T->full[i], T->lo[i], T->hi[i]) - T->x[i];
    hv(T, s, hs);
    return sqrt(dot(s, s, n)) <= delta && model_q(T, s, hs) <= MU0 * dot(T->g, s, n);
}

static double last_breakpoint(const struct tron *T) {  /* NumPy's max: a NaN wins */
    double m = -INFINITY;
    int nan = 0;
    for (int64_t i = 0; i < T->n; i++) {
        double g = T->g[i], t = g > 0 ? (T->x[i] - T->lo[i]) / g
                                      : (g < 0 ? (T->x[i] - T->hi[i]) / g : 0.0);
        if (isnan(t)) nan = 1; else if (t > m) m = t;
    }
    return T->n == 0 ? 0.0 : (nan ? NAN : m);
}

static void swap(double **a, double **b) { double *t = *a; *a = *b; *b = t; }

/* _Model.cauchy: the step in *s, *hs (the pairs swap); returns alpha */
static double cauchy(struct tron *T, double alpha, double delta, double **s, double **hs,
                     double **s2, double **hs2) {
    double gg = dot(T->g, T->g, T->n);
    if (!cauchy_trial(T, alpha, delta, gg, *s, *hs)) {
        for (int k = 0; k < 60; k++) {
            alpha *= 0.1;
            if (cauchy_trial(T, alpha, delta, gg, *s, *hs)) break;
        }
        return alpha;
    }
    double reach = last_breakpoint(T);
    for (int k = 0; k < 20; k++) {
        if (alpha > reach) break;
        if (!cauchy_trial(T, alpha * 10.0, delta, gg, *s2, *hs2)) break;
        alpha = alpha * 10.0;
        swap(s, s2);
        swap(hs, hs2);
    }
    return alpha;
}

/* _Model._jacobi into T->mfree: 1/|diag H| floored at a tenth of its finite mean, times free */
static const double *jacobi(struct tron *T) {
    const int64_t n = T->n;
    if (!T->precondition) return T->free;
    if (!T->have_minv) {
        double *diag = T->minv;
        hdiag(T->nf, T->ks, T->sizes, T->args, T->w, T->x, diag, n);
        T->products++;
        double sum = 0.0;
        int64_t count = 0;
        for (int64_t i = 0; i < n; i++) {
            diag[i] = fabs(diag[i]);
            if (isfinite(diag[i])) { sum += diag[i]; count++; }
        }
        double mean = count ? sum / (double)count : 0.0;
        double floor = mean > 0.0 && isfinite(mean) ? 0.1 * mean : 1.0;
        for (int64_t i = 0; i < n; i++)
            diag[i] = 1.0 / (isfinite(diag[i]) ? (diag[i] >= floor ? diag[i] : floor) : floor);
        T->have_minv = 1;
    }
    for (int64_t i = 0; i < n; i++) T->mfree[i] = T->minv[i] * T->free[i];
    return T->mfree;
}

/* _Model._projected_search: the new step in *s, *hs (swapped with s2, hs2); returns
   whether the projection cut it */
static int projected_search(struct tron *T, double **s, double **hs, double **s2,
                            double **hs2) {
    const int64_t n = T->n;
    double *xc = T->xc, *gq = T->full, *t = T->t, *ht = T->ht;
    for (int64_t i = 0; i < n; i++) { xc[i] = T->x[i] + (*s)[i]; gq[i] = T->g[i] + (*hs)[i]; }
    double beta = 1.0;
    for (int k = 0; k < 30; k++) {
        int cut = 0;
        for (int64_t i = 0; i < n && !cut; i++) {
            double v = xc[i] + beta * T->d[i];
            cut = !(v >= T->lo[i] && v <= T->hi[i]);
        }
        if (cut) {
            for (int64_t i = 0; i < n; i++)
                t[i] = clip(xc[i] + beta * T->d[i], T->lo[i], T->hi[i]) - xc[i];
            hv(T, t, ht);
        } else {
            for (int64_t i = 0; i < n; i++) { t[i] = beta * T->d[i]; ht[i] = beta * T->hd[i]; }
        }
        double first = dot(gq, t, n);
        if (first < 0.0 && first + 0.5 * dot(t, ht, n) <= MU0 * first) {
            int clipped = 0;
            for (int64_t i = 0; i < n; i++) {
                (*s2)[i] = (*s)[i] + t[i];
                (*hs2)[i] = (*hs)[i] + ht[i];
                clipped |= cut && t[i] != beta * T->d[i];
            }
            swap(s, s2);
            swap(hs, hs2);
            return clipped;
        }
        beta *= 0.5;
    }
    return 0;
}

/* _Model.subspace: CG on the free variables of x + s, then a projected search; again while
   a search stops at a new bound */
static void subspace(struct tron *T, double delta, double **s, double **hs, double **s2,
                     double **hs2) {
    const int64_t n = T->n;
    double goal = 0.0;
    for (int64_t k = 0; k < T->max_subspace; k++) {
        for (int64_t i = 0; i < n; i++) {
            double xc = T->x[i] + (*s)[i];
            T->free[i] = xc > T->lo[i] && xc < T->hi[i] ? 1.0 : 0.0;
            T->r[i] = T->free[i] != 0.0 ? -(T->g[i] + (*hs)[i]) : 0.0;
        }
        double norm_r = sqrt(dot(T->r, T->r, n));
        if (k == 0) {
            goal = py_min(T->cg_tol, sqrt(norm_r)) * norm_r;
            if (goal < 10.0 * T->tol) goal = py_min(goal, 0.5 * T->tol);
        }
        if (norm_r <= goal || norm_r == 0.0) break;
        const double *minv = jacobi(T);
        int64_t boundary = cfc_newton_cg(T->nf, T->ks, T->sizes, T->args, T->w, n, T->x,
                                         T->free, minv, *s, T->r, delta, goal, T->max_cg,
                                         T->d, T->hd, T->cg, &T->products);
        int clipped = projected_search(T, s, hs, s2, hs2);
        if (boundary || !clipped) break;
    }
}
"""
LOOP = r"""
/* TrustRegionNewton.solve's trials from (x0, g0, f0, e0) until a stop or the rows are full:
   accepted states into xs/gs/fs/es (rows) with |s| (ts), the rejected trials before each
   (bts), its kernel passes (evs) and |pg| (ps). Stops: 0 converged, 1 stalled (F cannot
   resolve the predicted decrease), 2 the rows are full, 3 no descent, 4 a trial not finite
   (in the next row: Python's check names it), 5 stalled (ftol, after its row).
   opts: eta0, eta1, eta2, cg_tol, tol, ftol; iopts: max_cg, max_subspace, precondition,
   stall_steps, rows; state: delta, alpha (in/out); istate: rejected, stalled (in/out),
   steps, passes after the last row, HVP and Hessian-diagonal passes (out). work: 20 n doubles. */
int64_t cfc_tron_loop(uintptr_t eg_all, uintptr_t fam, int64_t nf, const uintptr_t *ks,
    const int64_t *sizes, const uintptr_t *args, const double *w, int64_t n,
    const double *lo, const double *hi, const double *x0, const double *g0, double f0,
    const double *e0, const double *opts, const int64_t *iopts, double *state,
    int64_t *istate, double *xs, double *gs, double *fs, double *es, double *ts,
    double *ps, int64_t *bts, int64_t *evs, double *work) {
    eg_all_fn eg = (eg_all_fn)eg_all;
    const double eta0 = opts[0], eta1 = opts[1], eta2 = opts[2], ftol = opts[5];
    const int64_t stall_steps = iopts[3], rows = iopts[4];
    double *v = work, *s = v, *hs = v + n, *s2 = v + 2 * n, *hs2 = v + 3 * n;
    struct tron T = {.nf = nf, .n = n, .max_cg = iopts[0], .max_subspace = iopts[1],
                     .precondition = iopts[2], .ks = ks, .args = args, .sizes = sizes, .w = w,
                     .lo = lo, .hi = hi, .x = x0, .g = g0, .cg_tol = opts[3], .tol = opts[4],
                     .hg = v + 4 * n, .minv = v + 5 * n, .free = v + 6 * n,
                     .mfree = v + 7 * n, .r = v + 8 * n, .d = v + 9 * n, .hd = v + 10 * n,
                     .t = v + 11 * n, .ht = v + 12 * n, .xc = v + 13 * n,
                     .full = v + 14 * n, .cg = v + 15 * n};  /* cg: 5 n */
    double delta = state[0], alpha = state[1], f = f0, pg = pgn(x0, g0, lo, hi, n);
    const double *e = e0;
    int64_t rejected = istate[0], stalled = istate[1], steps = 0, passes = 0, stop = 2;
    while (steps < rows) {
        if (pg <= T.tol) { stop = 0; break; }
        T.have_hg = T.have_minv = 0;
        alpha = cauchy(&T, alpha, delta, &s, &hs, &s2, &hs2);
        subspace(&T, delta, &s, &hs, &s2, &hs2);
        double *xn = xs + steps * n, *gn = gs + steps * n, *en = es + steps * nf;
        for (int64_t i = 0; i < n; i++) {
            xn[i] = clip(T.x[i] + s[i], lo[i], hi[i]);
            s[i] = xn[i] - T.x[i];
        }
        double predicted = model_q(&T, s, hs);
        eg(nf, (const void *)fam, w, xn, gn, n, en);
        passes++;
        double fn = fsum(en, nf);
        int finite = isfinite(fn) != 0;
        for (int64_t i = 0; i < n && finite; i++) finite = isfinite(gn[i]) != 0;
        if (!finite) { fs[steps] = fn; stop = 4; break; }
        double actual = fn - f, size = 0.0;
        for (int64_t j = 0; j < nf; j++) size += fabs(e[j]);
        double noise = 64.0 * EPS * py_max(py_max(1.0, size), fabs(f));
        if (-predicted <= noise && actual > 0.0) { stop = 1; break; }
        double ratio = -predicted <= noise ? 1.0
                       : (predicted < 0.0 ? actual / predicted : -INFINITY);
        double snorm = sqrt(dot(s, s, n));
        if (ratio <= eta1) delta = 0.25 * py_min(snorm, delta);
        else if (ratio > eta2) delta = py_max(delta, 4.0 * snorm);
        if (ratio > eta0 && fn <= f) {
            fs[steps] = fn;
            ts[steps] = snorm;
            bts[steps] = rejected;
            evs[steps] = passes;
            double scale = fabs(f) > 1.0 ? fabs(f) : 1.0;
            stalled = f - fn <= ftol * scale ? stalled + 1 : 0;
            ps[steps] = pg = pgn(xn, gn, lo, hi, n);
            T.x = xn;
            T.g = gn;
            f = fn;
            e = en;
            rejected = passes = 0;
            steps++;
            if (stalled >= stall_steps) { stop = 5; break; }
            continue;
        }
        rejected++;
        if (delta <= 4.0 * EPS * py_max(1.0, sqrt(dot(T.x, T.x, n))) || rejected > 60) {
            stop = 3;
            break;
        }
    }
    state[0] = delta;
    state[1] = alpha;
    istate[0] = rejected;
    istate[1] = stalled;
    istate[2] = steps;
    istate[3] = passes;
    istate[4] = T.products;
    return stop;
}
"""
SOURCE = cloop.HELPERS + cgloop.SOURCE + STEP + LOOP
FLAGS = cgloop.FLAGS
# stop code -> what newton.py does next: the stop reason for `run.done`, or None (go on:
# the top of its loop sees convergence, the row limit or the rows left to take)
_STOPS = {0: None, 1: StopReason.STALLED, 2: None, 3: StopReason.NO_DESCENT, 4: None,
          5: StopReason.STALLED}
NOT_FINITE = 4


class TronLoop:
    """newton's trials in C on one run (`for_run` says whether it applies)."""

    def __init__(self, ffi: Any, lib: Any, eg_all: tuple[int, int, int],
                 tables: tuple[Any, ...], objective: Any):
        self.ffi, self.lib, self.objective = ffi, lib, objective
        self.eg, self.fam, self.nf = eg_all
        self.ks, self.sizes, self.args = tables
        self._work = np.empty(0)
        self.products = 0  # HVP and Hessian-diagonal passes so far (bench/small_relax.py)
        self.passes = 0  # cfc_eg_all passes so far

    def call(self, *args: Any) -> int:
        return int(self.lib.cfc_tron_loop(*args))  # one place a bench may time

    @classmethod
    def for_run(cls, objective: Any, run: Run) -> TronLoop | None:
        if run.recorder.observe.trackers or run.recorder.observe.rejected:
            return None
        tables = cgloop.objective_tables(objective)  # the CG loop's own conditions
        found = None if tables is None else cloop.eg_all(objective.backend)
        if found is None:
            return None
        built = loop_library("newton", SOURCE, CDEF, FLAGS)
        return None if built is None else cls(*built, found, tables, objective)

    def advance(self, run: Run, delta: float, alpha: float, rejected: int, options: Any
                ) -> tuple[StopReason | None, float, float, int]:
        """Trials from run's state until a stop or the history is full, each accepted state
        through `run.accept`: (the stop for `run.done` or None, delta, alpha, rejected)."""
        n, nf, ffi = run.x.size, self.nf, self.ffi
        rows = cloop.history_rows(run, options)
        xs, gs, es = np.empty((rows, n)), np.empty((rows, n)), np.empty((rows, nf))
        fs, ts, ps = np.empty(rows), np.empty(rows), np.empty(rows)
        bts, evs = np.zeros(rows, dtype=np.int64), np.zeros(rows, dtype=np.int64)
        if self._work.size != 20 * n:
            self._work = np.empty(20 * n)
        state = np.array([delta, alpha])
        istate = np.array([rejected, run.stalled, 0, 0, 0], dtype=np.int64)
        opts = np.array([options.eta0, options.eta1, options.eta2, options.cg_tol,
                         options.tol, options.ftol])
        iopts = np.array([options.max_cg, options.max_subspace, int(options.precondition),
                          options.stall_steps, rows], dtype=np.int64)
        d = lambda a: ffi.from_buffer("double[]", np.ascontiguousarray(a, np.float64))  # noqa: E731
        i = lambda a: ffi.from_buffer("int64_t[]", a)  # noqa: E731
        stop = self.call(
            self.eg, self.fam, nf, ffi.from_buffer("uintptr_t[]", self.ks), i(self.sizes),
            ffi.from_buffer("uintptr_t[]", self.args), d(self.objective.weights), n,
            d(run.lo), d(run.hi), d(run.x), d(run.g), float(run.f), d(run.fam), d(opts),
            i(iopts), d(state), i(istate), d(xs), d(gs), d(fs), d(es), d(ts), d(ps), i(bts),
            i(evs), d(self._work))
        steps = int(istate[2])
        self.products += int(istate[4])
        self.passes += int(evs[:steps].sum()) + int(istate[3])
        for k in range(steps):
            self.objective.evaluations += int(evs[k])
            if run.accept(run.steps + 1, xs[k], float(fs[k]), es[k], gs[k], float(ts[k]),
                          int(bts[k]), None, pgn=float(ps[k])):
                break  # stalled: the C loop stopped here too (stop 5)
        self.objective.evaluations += int(istate[3])  # the trials after the last row
        if stop == NOT_FINITE:  # raises, naming the trial and the step it was for
            run.objective.check_finite(xs[steps], float(fs[steps]), gs[steps], run.steps + 1)
        return _STOPS[stop], float(state[0]), float(state[1]), int(istate[0])


__all__ = ["TronLoop"]
