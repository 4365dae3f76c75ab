"""Per-call overhead of one energy+gradient evaluation at small N (issue 12, item 4): where
the kernels take microseconds, the Python around them is the cost. For the chain model
(N Landau terms, N-1 quadratic links) it times, round-robin and in one run:

  * raw cffi:   the generated `cfc_eg_*` kernels called directly with prebuilt arguments
                and one preallocated gradient buffer (the floor for any Python caller);
  * CBackend:   `problem.backend.energy_and_grad(x, w)`;
  * Objective:  `problem.objective().energy_and_grad(x)` (what a solver calls);

and prints the median microseconds per call and the ratios to raw cffi (target: CBackend
within 2x), with the load average, since only ratios from one run mean much here.

    python bench/call_overhead.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import cfc_dsl as cfc

ROOT = Path(__file__).resolve().parents[1]


def per_call(fn: Callable[[], Any], seconds: float = 0.02) -> float:
    """Mean seconds per call over a batch lasting at least `seconds`."""
    count = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(count):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return elapsed / count
        count *= 2


def raw_call(problem: Any, x: np.ndarray) -> Callable[[], None]:
    """The kernels with everything prepared once: the floor a Python caller can reach."""
    backend = problem.backend
    ffi = backend.ffi
    xp = ffi.from_buffer("double[]", x)
    grad = np.zeros(x.size)
    gp = ffi.from_buffer("double[]", grad)
    calls = [(eg, tuple(args), float(w)) for eg, _, args, w in backend._calls]

    def call() -> None:
        grad.fill(0.0)
        for eg, args, w in calls:
            eg(*args, w, xp, gp)

    return call


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"machine load (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
          f"{os.cpu_count()} cores")
    compiled = cfc.load(ROOT / "examples" / "chain.cfc").compile()
    print(f"{'N':>6}{'raw us':>10}{'backend us':>12}{'objective us':>14}"
          f"{'backend/raw':>13}{'objective/raw':>15}")
    for n in (10, 100, 1000):
        problem = compiled.bind(sizes={"N": n}, threads=1)
        x = np.random.default_rng(0).uniform(0.0, 1.0, n)
        weights = problem.backend.weights
        objective = problem.objective()
        fns = {"raw": raw_call(problem, x),
               "backend": lambda p=problem, w=weights, x=x: p.backend.energy_and_grad(x, w),
               "objective": lambda o=objective, x=x: o.energy_and_grad(x)}
        times: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(args.repeat):  # round-robin: drift on a busy machine hits all alike
            for name, fn in fns.items():
                times[name].append(per_call(fn))
        med = {k: float(np.median(v)) * 1e6 for k, v in times.items()}
        print(f"{n:>6}{med['raw']:>10.2f}{med['backend']:>12.2f}{med['objective']:>14.2f}"
              f"{med['backend'] / med['raw']:>13.2f}{med['objective'] / med['raw']:>15.2f}")
    load = os.getloadavg()
    print(f"machine load after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
