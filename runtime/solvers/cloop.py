"""pgd's step loop in C, for small problems whose per-step cost is Python (issue 12 item 4:
at N = 10^3 three quarters of a pgd run was NumPy calls and bookkeeping around ~15 us of
kernels). The loop below takes pgd's default step, as `pgd.py` describes it (Barzilai-
Borwein or fixed trial step, projection, Armijo backtracking on the projected step, the ftol
stall count, the projected-gradient stop), calling the model's own `cfc_eg_all` through a
function pointer, and keeps every accepted state. `PgdLoop.advance` then hands each state,
in order, to `Run.accept`, which checks, traces and counts it exactly as after a Python step;
the second-order test, escapes and the result stay with `Run` in Python.

Differences from the Python loop, on purpose: every trial is evaluated with its gradient
(`cfc_eg_all` is the one all-families entry point; the Python loop tries backtracking
trials energy-only and evaluates the accepted one again), and the dot products sum left to
right where the Python loop's use np.einsum, so iterates agree to round-off, not bit for
bit (tests/test_c_loop.py compares both on the same problems). The energy of a state is the
exactly rounded sum of its family energies, as the backend's (`fsum`, below, is CPython's
math.fsum). A trace row's wall time is the time since the previous row was recorded: rows of
one C batch are recorded together, so the batch's time falls on its first row.

It serves only where it changes nothing else: a C backend on its serial single-call path
with the user's numbering, pgd's default direction without the Lipschitz cap, and no
tracker but the trace (progress hooks, budgets and rejected-trial rows see each step as it
happens, so they get the Python loop).
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from cfc_dsl.runtime.build.loops import loop_library
from cfc_dsl.runtime.solvers.base import Run, StopReason
from cfc_dsl.runtime.solvers.cgloop import one_call_families

CDEF = """
int64_t cfc_pgd_loop(uintptr_t eg_all, int64_t nf, uintptr_t fam, const double *w, int64_t n,
    const double *lo, const double *hi, const double *x0, const double *g0, double f0,
    double t, double fixed, double c, double shrink, int64_t max_bt, double tol, double ftol,
    int64_t stalled, int64_t stall_steps, int64_t max_steps, double *xs, double *gs,
    double *fs, double *es, double *ts, double *ps, int64_t *bts, int64_t *evs,
    double *out);
"""
HELPERS = r"""
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef void (*eg_all_fn)(int64_t nf, const void *fam, const double *w, const double *X,
                          double *G, int64_t nx, double *E);

/* CPython's math.fsum (Shewchuk's partials, then the correctly rounded total); where
   fsum refuses (an inf or NaN, an intermediate overflow) the plain sum, as the backend's
   fsum_list falls back to. */
static double fsum(const double *v, int64_t n) {
    double p[64], plain = 0.0;
    int m = 0, special = 0;
    for (int64_t k = 0; k < n; k++) plain += v[k];
    for (int64_t k = 0; k < n && !special; k++) {
        double x = v[k];
        if (!isfinite(x) || m >= 63) { special = 1; break; }
        int i = 0;
        for (int j = 0; j < m; j++) {
            double y = p[j];
            if (fabs(x) < fabs(y)) { double tmp = x; x = y; y = tmp; }
            double hi = x + y, lo = y - (hi - x);
            if (lo != 0.0) p[i++] = lo;
            x = hi;
        }
        if (!isfinite(x)) { special = 1; break; }
        m = i;
        p[m++] = x;
    }
    if (special) return plain;
    double hi = 0.0, lo = 0.0;
    if (m > 0) {
        hi = p[--m];
        while (m > 0) {
            double x = hi, y = p[--m];
            hi = x + y;
            double yr = hi - x;
            lo = y - yr;
            if (lo != 0.0) break;
        }
        if (m > 0 && ((lo < 0.0 && p[m - 1] < 0.0) || (lo > 0.0 && p[m - 1] > 0.0))) {
            double y = lo * 2.0, x = hi + y, yr = x - hi;
            if (y == yr) hi = x;
        }
    }
    return hi;
}

static double clip(double v, double lo, double hi) {  /* NumPy's clip: NaN stays NaN */
    if (isnan(v)) return v;
    return v < lo ? lo : (v > hi ? hi : v);
}

static double pgn(const double *x, const double *g, const double *lo, const double *hi,
                  int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(x[i] - clip(x[i] - g[i], lo[i], hi[i]));
        if (d > m || isnan(d)) m = d;
    }
    return m;
}
"""
SOURCE = HELPERS + r"""
/* From (x0, g0, f0): accepted states into xs/gs/fs/es (rows), with the step t used, its
   backtracks and kernel passes. Stops: 0 converged, 1 stalled, 2 max_steps taken, 3 no
   trial lowered F, 4 the last state's gradient is not finite (its ps row unset).
   ps: each state's projected-gradient norm. out: steps, next t. */
int64_t cfc_pgd_loop(uintptr_t eg_all, int64_t nf, uintptr_t fam, const double *w, int64_t n,
    const double *lo, const double *hi, const double *x0, const double *g0, double f0,
    double t, double fixed, double c, double shrink, int64_t max_bt, double tol, double ftol,
    int64_t stalled, int64_t stall_steps, int64_t max_steps, double *xs, double *gs,
    double *fs, double *es, double *ts, double *ps, int64_t *bts, int64_t *evs,
    double *out) {
    eg_all_fn eg = (eg_all_fn)eg_all;
    const double *x = x0, *g = g0;
    double f = f0, pg = pgn(x0, g0, lo, hi, n);
    int64_t steps = 0, stop = 2;
    while (steps < max_steps) {
        if (pg <= tol) { stop = 0; break; }
        double *trial = xs + steps * n, *gt = gs + steps * n, *et = es + steps * nf;
        double tt = t, fn = 0.0;
        int64_t bt = 0, passes = 0, accepted = 0;
        for (; bt <= max_bt; bt++) {
            double dec = 0.0;
            for (int64_t i = 0; i < n; i++) {
                trial[i] = clip(x[i] - tt * g[i], lo[i], hi[i]);
                dec += g[i] * (trial[i] - x[i]);
            }
            if (!(dec < 0.0)) break;  /* the projected step vanished */
            double bound = f + c * dec;
            eg(nf, (const void *)fam, w, trial, gt, n, et);
            passes++;
            fn = fsum(et, nf);
            if (isfinite(fn) && fn <= bound) { accepted = 1; break; }
            tt *= shrink;
        }
        if (!accepted) { stop = 3; evs[steps] = passes; break; }
        double sy = 0.0, ss = 0.0;
        int finite = 1;
        for (int64_t i = 0; i < n; i++) {
            double s = trial[i] - x[i], y = gt[i] - g[i];
            sy += s * y;
            ss += s * s;
            finite &= isfinite(gt[i]) != 0;
        }
        fs[steps] = fn;
        ts[steps] = tt;
        bts[steps] = bt;
        evs[steps] = passes;
        steps++;
        if (!finite) { stop = 4; break; }
        ps[steps - 1] = pg = pgn(trial, gt, lo, hi, n);
        t = fixed > 0.0 ? fixed : (sy > 0.0 ? ss / sy : tt * 4.0);
        double scale = fabs(f) > 1.0 ? fabs(f) : 1.0;
        stalled = f - fn <= ftol * scale ? stalled + 1 : 0;
        x = trial;
        g = gt;
        f = fn;
        if (stalled >= stall_steps) { stop = 1; break; }
    }
    out[0] = (double)steps;
    out[1] = t;
    return stop;
}
"""
_STOPS = {0: None, 1: StopReason.STALLED, 2: None, 3: StopReason.NO_DESCENT, 4: None}
HISTORY_BYTES = 16 << 20  # the accepted states one C call may keep (x and g rows)


def history_rows(run: Run, options: Any) -> int:
    """How many accepted states one C call may keep (pgd's loop and tronloop.py's): the
    steps left, at most HISTORY_BYTES of x and g rows, at least one."""
    n = run.x.size
    return max(1, min(options.max_steps - run.steps, HISTORY_BYTES // (16 * max(n, 1))))


_ADDRESSES: weakref.WeakKeyDictionary[Any, tuple[Any, tuple[int, int, int]]] = (
    weakref.WeakKeyDictionary())  # backend -> (its family table, the addresses): ~0.4 ms each


def eg_all(backend: Any) -> tuple[int, int, int] | None:
    """(cfc_eg_all's address, the family table's, the family count) where the backend runs
    every family in that one call with the user's numbering; else None."""
    families = one_call_families(backend)
    if families is None:
        return None
    known = _ADDRESSES.get(backend)
    if known is not None and known[0] is families:
        return known[1]
    ffi = backend.ffi
    address = int(ffi.cast("uintptr_t", ffi.addressof(backend.lib, "cfc_eg_all")))
    found = address, int(ffi.cast("uintptr_t", families)), len(backend.bound.families)
    _ADDRESSES[backend] = (families, found)
    return found


class PgdLoop:
    """pgd's steps in C on one run (`for_run` says whether it applies)."""

    def __init__(self, ffi: Any, lib: Any, eg_all: tuple[int, int, int], objective: Any):
        self.ffi, self.lib, self.objective = ffi, lib, objective
        self.eg, self.fam, self.nf = eg_all

    def call(self, *args: Any) -> int:
        return int(self.lib.cfc_pgd_loop(*args))  # one place a bench may time

    @classmethod
    def for_run(cls, objective: Any, run: Run, options: Any) -> PgdLoop | None:
        if (options.normalize_grads or options.max_grad_norm or options.lipschitz_cap
                or run.recorder.observe.trackers or run.recorder.observe.rejected):
            return None
        from cfc_dsl.runtime.objective import Objective

        if type(objective) is not Objective:  # one whose F could differ from the kernels'
            return None
        w = getattr(objective, "weights", None)
        found = eg_all(getattr(objective, "backend", None))
        if found is None or not isinstance(w, np.ndarray) or w.dtype != np.float64 \
                or w.shape != (found[2],):
            return None
        built = loop_library("pgd", SOURCE, CDEF)
        return None if built is None else cls(*built, found, objective)

    def advance(self, run: Run, t: float, options: Any) -> tuple[StopReason | None, float]:
        """Steps from run's state until a stop or the history is full, each accepted
        through `run.accept`; (the stop for `run.done`, or None to go on; the next t)."""
        n, nf, ffi = run.x.size, self.nf, self.ffi
        rows = history_rows(run, options)
        xs, gs = np.empty((rows, n)), np.empty((rows, n))
        fs, es, ts, ps = np.empty(rows), np.empty((rows, nf)), np.empty(rows), np.empty(rows)
        bts, evs = np.zeros(rows, dtype=np.int64), np.zeros(rows, dtype=np.int64)
        out = np.zeros(2)
        x0, g0 = np.ascontiguousarray(run.x, np.float64), np.ascontiguousarray(run.g, np.float64)
        w = np.ascontiguousarray(self.objective.weights)
        lo = np.ascontiguousarray(run.lo, np.float64)
        hi = np.ascontiguousarray(run.hi, np.float64)
        d = lambda a: ffi.from_buffer("double[]", a)  # noqa: E731
        i = lambda a: ffi.from_buffer("int64_t[]", a)  # noqa: E731
        stop = self.call(
            self.eg, nf, self.fam, d(w), n, d(lo), d(hi), d(x0), d(g0), float(run.f), t,
            options.step, options.armijo_c, options.shrink, options.max_backtracks,
            options.tol, options.ftol, run.stalled, options.stall_steps, rows, d(xs), d(gs),
            d(fs), d(es), d(ts), d(ps), i(bts), i(evs), d(out))
        steps = int(out[0])
        for k in range(steps):
            self.objective.evaluations += int(evs[k])
            # the C loop checked the state finite and took its |pg| as Run would; not the
            # last state of stop 4, which Run's check then names
            pg = None if stop == 4 and k == steps - 1 else float(ps[k])
            if run.accept(run.steps + 1, xs[k], float(fs[k]), es[k], gs[k], float(ts[k]),
                          int(bts[k]), None, pgn=pg):
                return StopReason.STALLED, float(out[1])  # the C loop stopped here too
        if stop == 3:  # the failed line search's passes
            self.objective.evaluations += int(evs[steps])
        return _STOPS[stop], float(out[1])


__all__ = ["HELPERS", "PgdLoop", "eg_all", "history_rows", "one_call_families"]
