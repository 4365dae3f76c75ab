"""Thread scaling per family size: the serial kernels vs the threaded ones on 1 and 2 threads.

The model is bench/grad_throughput.py's (N variables, 2N quadratic and 2N hinge edges, random,
sorted tables). For each N three bindings are timed round-robin, each op the minimum (or
`--stat median`) over `--repeat` repetitions of the mean of enough calls to last ~20 ms:

  * serial:  the serial kernels (SERIAL_BELOW out of reach), what every family under the
             threshold runs;
  * 1t, 2t:  the threaded kernels (SERIAL_BELOW = 0) on 1 and 2 threads, which walk the
             per-slot sorted copies of runtime/bind/copies.py;

for three operations: energy_and_grad, hvp and hess_diag. The 1t and 2t results must agree
bit for bit before anything is timed. SERIAL_BELOW in runtime/backends/threads.py is where
the threaded form on the machine's threads stops losing to the serial one; the load average
is printed before and after, since only ratios from one run mean much on a shared machine.

    python bench/thread_scaling.py                          # N = 1e3 .. 1e6
    python bench/thread_scaling.py --sizes 3e4,1e5 --repeat 15
    OMP_WAIT_POLICY=PASSIVE python bench/thread_scaling.py --clock cpu   # work, not waiting
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for entry in (ROOT, ROOT / "bench"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

import grad_throughput as gt  # noqa: E402

import cfc_dsl  # noqa: E402
from cfc_dsl.runtime.backends import threads as cfc_threads  # noqa: E402

FORMS = {"serial": (1 << 62, 1), "1t": (0, 1), "2t": (0, 2)}  # (SERIAL_BELOW, threads)


def bind(compiled, n: int, seed: int, threshold: int, threads: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    edges, hedges = (rng.integers(0, n, size=(2 * n, 2)) for _ in range(2))
    data = {"edges": edges, "w": rng.uniform(0.1, 2.0, 2 * n), "hedges": hedges,
            "hw": rng.uniform(0.1, 2.0, 2 * n)}
    saved = cfc_threads.SERIAL_BELOW
    cfc_threads.SERIAL_BELOW = threshold
    try:
        return compiled.bind(sizes={"N": n}, data=data, threads=threads, reorder="sort")
    finally:
        cfc_threads.SERIAL_BELOW = saved


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=gt.parse_sizes,
                    default=gt.parse_sizes("1e3,1e4,3e4,1e5,3e5,1e6"))
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--stat", choices=("min", "median"), default="min")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: process CPU time, all threads (needs OMP_WAIT_POLICY=PASSIVE)")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    if args.clock == "cpu":
        if os.environ.get("OMP_WAIT_POLICY", "").lower() != "passive":
            print("--clock cpu needs OMP_WAIT_POLICY=PASSIVE", file=sys.stderr)
            return 2
        gt.CLOCK = time.process_time
    cache = tempfile.mkdtemp(prefix="cfc_bench_cache_")
    atexit.register(shutil.rmtree, cache, ignore_errors=True)
    os.environ["CFC_CACHE_DIR"] = cache
    gt.STAT = min if args.stat == "min" else statistics.median

    print(f"before: {gt.load()}; {args.stat} {args.clock} time of {args.repeat}")
    compiled = cfc_dsl.loads(gt.MODEL, "grad_throughput").compile()
    print(f"  {'N':>9} {'op':<16}{'serial':>12}{'1t':>12}{'2t':>12}{'1t/serial':>11}"
          f"{'2t/serial':>11}{'2t/1t':>8}")
    for n in args.sizes:
        problems = {name: bind(compiled, n, args.seed, *form) for name, form in FORMS.items()}
        rng = np.random.default_rng(args.seed + 1)
        x, v = rng.random(n), rng.standard_normal(n)
        ops = {"energy_and_grad": lambda b, x=x: b.energy_and_grad(x)[2],
               "hvp": lambda b, x=x, v=v: b.hvp(x, v), "hess_diag": lambda b, x=x: b.hess_diag(x)}
        for op, call in ops.items():
            one, two = (call(problems[t].backend).copy() for t in ("1t", "2t"))
            if one.tobytes() != two.tobytes():
                print(f"N = {n}: {op} differs between 1 and 2 threads", file=sys.stderr)
                return 1
            ref = call(problems["serial"].backend)
            err = float(np.max(np.abs(one - ref)) / max(float(np.max(np.abs(ref))), 1e-300))
            if err > 1e-12:
                print(f"N = {n}: {op} threaded vs serial rel {err:.1e}", file=sys.stderr)
                return 1
            times = gt.time_round_robin({name: (lambda p=p, c=call: c(p.backend))
                                         for name, p in problems.items()}, args.repeat)
            s, a, b = times["serial"], times["1t"], times["2t"]
            print(f"  {n:>9,} {op:<16}{gt.fmt_time(s):>12}{gt.fmt_time(a):>12}"
                  f"{gt.fmt_time(b):>12}{a / s:>11.2f}{b / s:>11.2f}{b / a:>8.2f}")
        del problems
    print(f"SERIAL_BELOW = {cfc_threads.SERIAL_BELOW:,} instances per family; after: {gt.load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
