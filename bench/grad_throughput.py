"""Gradient throughput: cfc's generated C kernels vs NumPy (bincount scatter) vs hand-written C.

The model has N variables, one Landau term per variable, 2N random quadratic edges and 2N
random directed-hinge edges, each edge with its own random weight (a `data` array passed
as the energy's `w`, so all three implementations read the same per-edge weights):

    F(x) = sum_i a x_i^2 + b x_i^4
         + sum_e w_e (x_u - x_v)^2            (e = (u, v) in edges,  2N of them)
         + sum_h hw_h relu(x_v - x_u)^2       (h = (u, v) in hedges, 2N of them)

One energy+gradient evaluation is timed for

  * cfc C (API):   `problem.energy_and_grad(x)` through the public API (allocates the
                   gradient, per-family energies, compensated total);
  * cfc C (raw):   the three generated kernels called directly through cffi into a reused,
                   zeroed gradient buffer (what the kernels cost without the Python wrapper);
  * hand C:        a straightforward single-pass C function written below, compiled in this
                   run with cffi and the same flags as `cfc_dsl.runtime.build.toolchain.C_FLAGS`;
  * NumPy:         vectorised gathers and one `np.bincount` scatter.

All three must agree (energy and gradient to 1e-9 relative) before anything is timed.
Each timing is the median over `--repeat` repetitions; a repetition runs the call enough
times to last at least ~20 ms and records the mean, and the implementations are timed
round-robin so that drift on a busy machine hits all of them alike. The default clock is
the calling thread's CPU time (`time.thread_time`), which other processes competing for
the two cores cannot inflate; `--clock wall` measures elapsed time instead. Everything runs
on one thread (no BLAS is involved; the thread variables are set anyway).

    python bench/grad_throughput.py                       # N = 1e4, 1e5, 1e6
    python bench/grad_throughput.py --sizes 1e4,1e5 --repeat 30
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import atexit  # noqa: E402
import importlib.util  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import cffi  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cfc_dsl  # noqa: E402
from cfc_dsl.runtime.build.toolchain import C_FLAGS, toolchain  # noqa: E402

A, B = -0.5, 1.0  # Landau coefficients (scalars: the same for every variable)
TARGET_HAND = 1.25  # generated C within 1.25x of hand-written C, at every N
TARGET_NUMPY = 2.0  # generated C at least 2x faster than NumPy at N = 1e6
TOL = 1e-9

MODEL = f"""\
model grad_throughput
size N = 10
param a = {A}
param b = {B}
var x[N] in [0, 1] = 0.5
data edges[M, 2] : int
data w[M]
data hedges[K, 2] : int
data hw[K]
factor local[i in 0..N]  = landau(x[i]; a = a, b = b)
factor quad[e in 0..M]   = quadratic(x[edges[e, 0]], x[edges[e, 1]]; w = w[e])
factor hinge[e in 0..K]  = directed_hinge(x[hedges[e, 0]], x[hedges[e, 1]]; w = hw[e])
"""

HAND_CDEF = """
double hand_eg(int64_t n, double a, double b,
               int64_t m, const int64_t *edges, const double *w,
               int64_t k, const int64_t *hedges, const double *hw,
               const double *x, double *g);
"""

# What one would write by hand: one loop per term, the gradient initialised by the Landau
# loop (no separate memset), edge lists read as the (M, 2) row-major arrays they are.
HAND_SOURCE = r"""
#include <stdint.h>

double hand_eg(int64_t n, double a, double b,
               int64_t m, const int64_t *restrict edges, const double *restrict w,
               int64_t k, const int64_t *restrict hedges, const double *restrict hw,
               const double *restrict x, double *restrict g)
{
    double e = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        const double xi = x[i], x2 = xi * xi;
        e += a * x2 + b * x2 * x2;
        g[i] = 2.0 * a * xi + 4.0 * b * x2 * xi;
    }
    for (int64_t j = 0; j < m; ++j) {
        const int64_t u = edges[2 * j], v = edges[2 * j + 1];
        const double d = x[u] - x[v];
        const double t = w[j] * d;
        e += t * d;
        g[u] += 2.0 * t;
        g[v] -= 2.0 * t;
    }
    for (int64_t j = 0; j < k; ++j) {
        const int64_t u = hedges[2 * j], v = hedges[2 * j + 1];
        const double d = x[v] - x[u];
        const double r = d > 0.0 ? d : 0.0;
        const double t = hw[j] * r;
        e += t * r;
        g[v] += 2.0 * t;
        g[u] -= 2.0 * t;
    }
    return e;
}
"""


def build_hand(tmp: Path):  # type: ignore[no-untyped-def]
    """Compile the hand-written kernel with cffi and the runtime's flags; returns (ffi, lib)."""
    ffi = cffi.FFI()
    ffi.cdef(HAND_CDEF)
    name = f"_cfc_bench_hand_{os.getpid()}"
    ffi.set_source(name, HAND_SOURCE, extra_compile_args=list(C_FLAGS))
    os.environ.setdefault("CC", toolchain().compiler)
    log = tmp / "build.log"
    saved = os.dup(1), os.dup(2)
    with open(log, "w") as fh:  # keep the compiler's chatter out of the table
        sys.stdout.flush()
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            so = ffi.compile(tmpdir=str(tmp), verbose=False)
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
    spec = importlib.util.spec_from_file_location(name, so)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ffi, module.lib


class Instance:
    """One random graph of size N and the four evaluators over it."""

    def __init__(self, n: int, compiled, hand, seed: int):  # type: ignore[no-untyped-def]
        rng = np.random.default_rng(seed)
        self.n = n
        self.edges = rng.integers(0, n, size=(2 * n, 2), dtype=np.int64)
        self.w = rng.uniform(0.1, 2.0, size=2 * n)
        self.hedges = rng.integers(0, n, size=(2 * n, 2), dtype=np.int64)
        self.hw = rng.uniform(0.1, 2.0, size=2 * n)
        self.x = rng.uniform(0.0, 1.0, size=n)

        t0 = time.perf_counter()
        self.problem = compiled.bind(sizes={"N": n}, data={
            "edges": self.edges, "w": self.w, "hedges": self.hedges, "hw": self.hw})
        self.bind_seconds = time.perf_counter() - t0

        # raw generated kernels: the backend's own prepared cffi arguments
        backend = self.problem.backend
        self._calls = [(eg, args, w) for eg, _, args, w in backend._calls]
        self._ffi = backend.ffi
        self._g_raw = np.zeros(n)
        self._xp = self._ffi.cast("double *", self.x.ctypes.data)
        self._gp_raw = self._ffi.cast("double *", self._g_raw.ctypes.data)

        # hand-written C
        hffi, self._hlib = hand
        self._g_hand = np.zeros(n)
        dp = lambda a: hffi.cast("double *", a.ctypes.data)  # noqa: E731
        ip = lambda a: hffi.cast("int64_t *", a.ctypes.data)  # noqa: E731
        self._hargs = (n, A, B, 2 * n, ip(self.edges), dp(self.w), 2 * n, ip(self.hedges),
                       dp(self.hw), dp(self.x), dp(self._g_hand))

        # NumPy: the scatter index is static graph data, so it is built once
        e0, e1 = self.edges[:, 0].copy(), self.edges[:, 1].copy()
        h0, h1 = self.hedges[:, 0].copy(), self.hedges[:, 1].copy()
        self._np = (e0, e1, h0, h1, np.concatenate([e0, e1, h1, h0]))

    # -- the four evaluators; each returns (energy, gradient)
    def cfc_api(self) -> tuple[float, np.ndarray]:
        f, _, g = self.problem.energy_and_grad(self.x)
        return f, g

    def cfc_raw(self) -> tuple[float, np.ndarray]:
        self._g_raw.fill(0.0)
        xp, gp = self._xp, self._gp_raw
        f = 0.0
        for eg, args, w in self._calls:
            f += w * eg(*args, w, xp, gp)
        return f, self._g_raw

    def hand(self) -> tuple[float, np.ndarray]:
        return self._hlib.hand_eg(*self._hargs), self._g_hand

    def numpy(self) -> tuple[float, np.ndarray]:
        x = self.x
        e0, e1, h0, h1, idx = self._np
        x2 = x * x
        f = float(np.sum(A * x2 + B * x2 * x2))
        d = x[e0] - x[e1]
        t = self.w * d
        f += float(np.dot(t, d))
        r = np.maximum(x[h1] - x[h0], 0.0)
        s = self.hw * r
        f += float(np.dot(s, r))
        t *= 2.0
        s *= 2.0
        g = np.bincount(idx, weights=np.concatenate([t, -t, s, -s]), minlength=self.n)
        g += 2.0 * A * x + 4.0 * B * x2 * x
        return f, g


def agree(ref: tuple[float, np.ndarray], other: tuple[float, np.ndarray]) -> tuple[float, float]:
    fe = abs(other[0] - ref[0]) / max(abs(ref[0]), 1e-300)
    ge = float(np.max(np.abs(other[1] - ref[1])) / max(float(np.max(np.abs(ref[1]))), 1e-300))
    return fe, ge


CLOCKS = {"cpu": time.thread_time, "wall": time.perf_counter}


def time_round_robin(fns: dict[str, Callable[[], object]], repeat: int, clock: str = "cpu",
                     min_rep_seconds: float = 0.02) -> dict[str, float]:
    """Median over `repeat` repetitions of the mean time of one call, per function."""
    now = CLOCKS[clock]
    number: dict[str, int] = {}
    for name, fn in fns.items():
        fn()  # warm up (page faults, caches)
        t0 = time.perf_counter()
        fn()
        one = time.perf_counter() - t0
        number[name] = max(1, int(min_rep_seconds / max(one, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            k = number[name]
            t0 = now()
            for _ in range(k):
                fn()
            samples[name].append((now() - t0) / k)
    return {name: statistics.median(v) for name, v in samples.items()}


def fmt_time(s: float) -> str:
    return f"{s * 1e3:9.3f} ms" if s >= 1e-3 else f"{s * 1e6:9.1f} us"


def parse_sizes(text: str) -> list[int]:
    return [int(float(t)) for t in text.split(",") if t.strip()]


def default_repeat(n: int) -> int:
    return 30 if n <= 10_000 else 20 if n <= 100_000 else 11


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=parse_sizes, default=parse_sizes("1e4,1e5,1e6"),
                    help="comma-separated N values (default 1e4,1e5,1e6)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="repetitions per timing (default 30/20/11 for N <= 1e4/1e5/larger)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                    help="cpu: this thread's CPU time (default; robust when other processes "
                         "share the cores), wall: elapsed time")
    ap.add_argument("--use-cache", action="store_true",
                    help="use the normal kernel cache (default: a fresh temporary "
                         "CFC_CACHE_DIR, removed at exit, so nothing is left behind)")
    args = ap.parse_args(argv)
    if not args.use_cache:
        cache = tempfile.mkdtemp(prefix="cfc_bench_cache_")
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
        os.environ["CFC_CACHE_DIR"] = cache

    tc = toolchain()
    print(f"python {platform.python_version()}, numpy {np.__version__}, cffi {cffi.__version__}")
    print(f"compiler {tc.version}; flags {' '.join(C_FLAGS)}; {os.cpu_count()} CPUs, one thread used")

    t0 = time.perf_counter()
    compiled = cfc_dsl.loads(MODEL, "grad_throughput").compile()
    info = compiled.info
    print(f"cfc compile: {time.perf_counter() - t0:.2f} s "
          f"(cache {'hit' if info and info.cache_hit else 'miss'})")

    rows = []
    with tempfile.TemporaryDirectory(prefix="cfc_bench_hand_") as tmp:
        t0 = time.perf_counter()
        hand = build_hand(Path(tmp))
        print(f"hand-written C compiled in {time.perf_counter() - t0:.2f} s")
        for i, n in enumerate(args.sizes):
            inst = Instance(n, compiled, hand, args.seed + i)
            ref = inst.hand()
            ref = (ref[0], ref[1].copy())
            worst = 0.0
            for name, fn in (("cfc C (API)", inst.cfc_api), ("cfc C (raw)", inst.cfc_raw),
                             ("NumPy", inst.numpy)):
                fe, ge = agree(ref, fn())
                worst = max(worst, fe, ge)
                if fe > TOL or ge > TOL:
                    print(f"N = {n}: {name} disagrees with the hand-written C: energy rel "
                          f"{fe:.2e}, gradient rel {ge:.2e} (tolerance {TOL:g})", file=sys.stderr)
                    return 1
            repeat = args.repeat or default_repeat(n)
            times = time_round_robin({"cfc C (API)": inst.cfc_api, "cfc C (raw)": inst.cfc_raw,
                                      "hand C": inst.hand, "NumPy": inst.numpy}, repeat,
                                     args.clock)
            rows.append((n, times))
            api, raw, hc, npy = (times[k] for k in ("cfc C (API)", "cfc C (raw)", "hand C", "NumPy"))
            terms = 5 * n
            print(f"\nN = {n:,} ({terms:,} terms, 4N = {4 * n:,} edges; bind {inst.bind_seconds:.2f} s; "
                  f"median of {repeat}, {args.clock} clock; all agree to {worst:.1e})")
            print(f"  {'implementation':<14}{'time':>12}{'ns/term':>10}")
            for name, t in times.items():
                print(f"  {name:<14}{fmt_time(t):>12}{t / terms * 1e9:>10.2f}")
            ok_hand = api / hc <= TARGET_HAND
            print(f"  generated / hand-written C : {api / hc:5.2f}x (API), {raw / hc:5.2f}x (raw)"
                  f"   target <= {TARGET_HAND}x: {'met' if ok_hand else 'MISSED'}")
            line = f"  NumPy / generated C        : {npy / api:5.2f}x (API), {npy / raw:5.2f}x (raw)"
            if n >= 1_000_000:
                ok_np = npy / api >= TARGET_NUMPY
                line += f"   target >= {TARGET_NUMPY}x at N = 1e6: {'met' if ok_np else 'MISSED'}"
            print(line)

    print("\nsummary (API timings; raw in parentheses)")
    print(f"  {'N':>10}  {'gen/hand':>16}  {'numpy/gen':>16}")
    for n, t in rows:
        print(f"  {n:>10,}  {t['cfc C (API)'] / t['hand C']:>7.2f} ({t['cfc C (raw)'] / t['hand C']:.2f})"
              f"  {t['NumPy'] / t['cfc C (API)']:>7.2f} ({t['NumPy'] / t['cfc C (raw)']:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
