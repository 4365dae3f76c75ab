"""Gradient throughput: cfc's generated C kernels vs NumPy (bincount scatter) vs hand-written C.

The model has N variables, one Landau term per variable, 2N random quadratic edges and 2N
random directed-hinge edges, each edge with its own random weight (a `data` array passed
as the energy's `w`, so all three implementations read the same per-edge weights):

    F(x) = sum_i a x_i^2 + b x_i^4
         + sum_e w_e (x_u - x_v)^2            (e = (u, v) in edges,  2N of them)
         + sum_h hw_h relu(x_v - x_u)^2       (h = (u, v) in hedges, 2N of them)

One energy+gradient evaluation is timed for

  * cfc C, 1 and 2 threads, unsorted (`--reorder none`) and sorted (the default) tables:
                   `problem.backend.energy_and_grad(x)` (allocates the gradient, per-family
                   energies, compensated total; permutes nothing for these orders). Families
                   of SERIAL_BELOW instances or more take the threaded kernels on any thread
                   count (they walk per-slot sorted copies, so "unsorted" only changes the
                   order of ties there); "serial" is the serial kernel forced on the sorted
                   tables, what 1 thread ran before;
  * hand C:        a straightforward single-pass C function written below, compiled in this
                   run with cffi and the same flags as `cfc_dsl.runtime.build.toolchain.C_FLAGS`;
  * NumPy:         vectorised gathers and one `np.bincount` scatter.

All must agree (energy and gradient to 1e-9 relative) before anything is timed, and the
two thread counts must agree bit for bit. Each timing is the median (`--stat min`: the
minimum, steadier on a loaded machine) over `--repeat` repetitions; a repetition runs the call enough times to last at least ~20 ms and records
the mean, and the implementations are timed round-robin so that drift on a busy machine
hits all of them alike. The clock is elapsed time (threads are measured); the load average
(`os.getloadavg()`) is printed before and after, since only ratios from one run mean much
on a shared machine.

    python bench/grad_throughput.py                       # N = 1e4 .. 1e6, the 1e2 check
    python bench/grad_throughput.py --large               # also N = 1e7
    python bench/grad_throughput.py --stat min            # minimum of the repetitions
    OMP_WAIT_POLICY=PASSIVE python bench/grad_throughput.py --clock cpu   # CPU time
    python bench/grad_throughput.py --threshold           # = bench/thread_scaling.py: the
                                                          # threshold, HVP and diagonal too
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
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
from cfc_dsl.runtime.backends import threads as cfc_threads  # noqa: E402
from cfc_dsl.runtime.build.toolchain import C_FLAGS, toolchain  # noqa: E402

A, B = -0.5, 1.0  # Landau coefficients (scalars: the same for every variable)
# issue 12's targets (on an idle 2-core machine): NumPy / generated C
TARGETS = {("2t sorted", 1_000_000): 4.0, ("2t sorted", 10_000_000): 6.0,
           ("1t sorted", 1_000_000): 2.5}
VARIANTS = {"serial": (1, "sort"), "1t unsorted": (1, "none"), "1t sorted": (1, "sort"),
            "2t unsorted": (2, "none"), "2t sorted": (2, "sort")}
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

        data = {"edges": self.edges, "w": self.w, "hedges": self.hedges, "hw": self.hw}
        t0 = time.perf_counter()
        self.problems = {name: bind(compiled, name, sizes={"N": n}, data=data, threads=t,
                                    reorder=r) for name, (t, r) in VARIANTS.items()}
        self.bind_seconds = time.perf_counter() - t0

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

    # -- the evaluators; each returns (energy, gradient)
    def cfc(self, name: str) -> Callable[[], tuple[float, np.ndarray]]:
        backend = self.problems[name].backend

        def call() -> tuple[float, np.ndarray]:
            f, _, g = backend.energy_and_grad(self.x)
            return f, g
        return call

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


def bind(compiled, variant: str, **kwargs):  # type: ignore[no-untyped-def]
    """Bind one variant; "serial" with the threshold out of reach (the serial kernels)."""
    saved = cfc_threads.SERIAL_BELOW
    if variant == "serial":
        cfc_threads.SERIAL_BELOW = 1 << 62
    try:
        return compiled.bind(**kwargs)
    finally:
        cfc_threads.SERIAL_BELOW = saved


STAT: Callable[[list[float]], float] = statistics.median
CLOCK: Callable[[], float] = time.perf_counter  # --clock cpu: time.process_time


def time_round_robin(fns: dict[str, Callable[[], object]], repeat: int,
                     min_rep_seconds: float = 0.02) -> dict[str, float]:
    """STAT (median or min) over `repeat` repetitions of the mean time of one call."""
    now = CLOCK
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
    return {name: STAT(v) for name, v in samples.items()}


def fmt_time(s: float) -> str:
    return f"{s * 1e3:9.3f} ms" if s >= 1e-3 else f"{s * 1e6:9.1f} us"


def parse_sizes(text: str) -> list[int]:
    return [int(float(t)) for t in text.split(",") if t.strip()]


def default_repeat(n: int) -> int:
    return 30 if n <= 10_000 else 20 if n <= 100_000 else 11


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def small_check(compiled, repeat: int) -> None:  # type: ignore[no-untyped-def]
    """N = 10^2 through the API with the shipped threshold: 2 threads must not be slower."""
    rng = np.random.default_rng(1)
    n = 100
    edges, hedges = (rng.integers(0, n, size=(2 * n, 2)) for _ in range(2))
    data = {"edges": edges, "w": rng.random(2 * n), "hedges": hedges, "hw": rng.random(2 * n)}
    x = rng.random(n)
    ps = {t: compiled.bind(sizes={"N": n}, data=data, threads=t) for t in (1, 2)}
    times = time_round_robin({f"{t}": (lambda p=p: p.energy_and_grad(x))
                              for t, p in ps.items()}, repeat)
    print(f"\nN = 100, API energy_and_grad: 1 thread {fmt_time(times['1'])}, 2 threads "
          f"{fmt_time(times['2'])} (ratio {times['2'] / times['1']:.2f}; families under "
          f"SERIAL_BELOW = {cfc_threads.SERIAL_BELOW:,} run serially)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=parse_sizes, default=parse_sizes("1e4,1e5,1e6"),
                    help="comma-separated N values (default 1e4,1e5,1e6)")
    ap.add_argument("--large", action="store_true", help="also N = 1e7 (minutes, ~6 GB)")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="comma-separated subset of the cfc rows (each bound problem at "
                         "N = 1e7 holds ~4 GB: all five need ~20 GB)")
    ap.add_argument("--threshold", action="store_true",
                    help="run bench/thread_scaling.py instead (serial vs threaded per size)")
    ap.add_argument("--stat", choices=("median", "min"), default="median",
                    help="statistic over the repetitions (min is steadier under load)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: the process's CPU time over all its threads (with "
                         "OMP_WAIT_POLICY=PASSIVE, so waiting threads do not count): the "
                         "work a thread count costs, which a loaded machine cannot hide")
    ap.add_argument("--repeat", type=int, default=None,
                    help="repetitions per timing (default 30/20/11 for N <= 1e4/1e5/larger)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--use-cache", action="store_true",
                    help="use the normal kernel cache (default: a fresh temporary "
                         "CFC_CACHE_DIR, removed at exit, so nothing is left behind)")
    args = ap.parse_args(argv)
    if args.threshold:  # the sweep behind SERIAL_BELOW lives in its own bench
        sys.path.insert(0, str(ROOT / "bench"))
        import thread_scaling

        return int(thread_scaling.main([]))
    if not args.use_cache:
        cache = tempfile.mkdtemp(prefix="cfc_bench_cache_")
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
        os.environ["CFC_CACHE_DIR"] = cache
    global STAT, CLOCK
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    kept = {v: VARIANTS[v] for v in chosen}
    VARIANTS.clear()
    VARIANTS.update(kept)
    STAT = min if args.stat == "min" else statistics.median
    if args.clock == "cpu":
        if os.environ.get("OMP_WAIT_POLICY", "").lower() != "passive":
            print("--clock cpu needs OMP_WAIT_POLICY=PASSIVE in the environment (set before "
                  "the OpenMP runtime starts), or spinning threads count as work", file=sys.stderr)
            return 2
        CLOCK = time.process_time
    sizes = args.sizes + ([10_000_000] if args.large and 10_000_000 not in args.sizes else [])

    tc = toolchain()
    print(f"python {platform.python_version()}, numpy {np.__version__}, cffi {cffi.__version__}")
    print(f"compiler {tc.version}; flags {' '.join(tc.flags)}")
    print(f"before: {load()}")

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
        for i, n in enumerate(sizes):
            inst = Instance(n, compiled, hand, args.seed + i)
            ref = inst.hand()
            ref = (ref[0], ref[1].copy())
            fns = {name: inst.cfc(name) for name in VARIANTS}
            worst = 0.0
            for name, fn in (*fns.items(), ("NumPy", inst.numpy)):
                fe, ge = agree(ref, fn())
                worst = max(worst, fe, ge)
                if fe > TOL or ge > TOL:
                    print(f"N = {n}: {name} disagrees with the hand-written C: energy rel "
                          f"{fe:.2e}, gradient rel {ge:.2e} (tolerance {TOL:g})", file=sys.stderr)
                    return 1
            for order in ("unsorted", "sorted"):
                if f"1t {order}" not in fns or f"2t {order}" not in fns:
                    continue
                one = fns[f"1t {order}"]()
                one = (one[0], one[1].copy())
                two = fns[f"2t {order}"]()
                if one[0] != two[0] or one[1].tobytes() != two[1].tobytes():
                    print(f"N = {n}: 1 and 2 threads differ ({order})", file=sys.stderr)
                    return 1
            repeat = args.repeat or default_repeat(n)
            times = time_round_robin({**fns, "hand C": inst.hand, "NumPy": inst.numpy}, repeat)
            rows.append((n, times))
            terms = 5 * n
            print(f"\nN = {n:,} ({terms:,} terms, 4N = {4 * n:,} edges; bind of the four "
                  f"{inst.bind_seconds:.2f} s; {args.stat} {args.clock} time of {repeat}; all agree to {worst:.1e}, "
                  f"threads bit-identical; {load()})")
            print(f"  {'implementation':<14}{'time':>12}{'ns/term':>10}{'NumPy/this':>12}")
            for name, t in times.items():
                print(f"  {name:<14}{fmt_time(t):>12}{t / terms * 1e9:>10.2f}"
                      f"{times['NumPy'] / t:>11.2f}x")
            for (name, size), goal in TARGETS.items():
                if size == n and args.clock == "wall" and name in times:  # wall-clock targets
                    got = times["NumPy"] / times[name]
                    print(f"  target NumPy/{name} >= {goal}x at N = {n:,}: {got:.2f}x "
                          f"{'met' if got >= goal else 'MISSED'}")
            del inst
        small_check(compiled, 30)

    print(f"\nsummary: NumPy time / each (higher is faster); after: {load()}")
    print(f"  {'N':>11} " + " ".join(f"{k:>12}" for k in (*VARIANTS, "hand C")))
    for n, t in rows:
        print(f"  {n:>11,} " + " ".join(f"{t['NumPy'] / t[k]:>11.2f}x"
                                          for k in (*VARIANTS, "hand C")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
