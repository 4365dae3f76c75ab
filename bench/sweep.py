"""The Landau sweep (SEED_SPEC 6.2) three ways: serially in one process, as Dask tasks on a
2-worker LocalCluster, and the research code's way, one process per point (`cfc run
--json` in a subprocess). Each of the 21 a-values x 10 seeds relaxes N Landau order
parameters (default 10^4) from a seeded random start; the ratios say what a task costs
next to a relaxation. The machine's load average is printed: the timings are shared.

    python bench/sweep.py
    python bench/sweep.py --n 10000 --seeds 10 --subprocess-points 42
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import cfc_dsl as cfc

LANDAU = """model landau_sweep
size N = 10000
param a = -0.5
data eta0[N]
var eta[N] in [0, 1] = 0.1
init eta[i in 0..N] = eta0[i]
factor local[i in 0..N] = landau(eta[i]; a = a, b = 1.0)
"""
A_VALUES = "-1:1:21"


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="order parameters per point")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--subprocess-points", type=int, default=None,
                    help="time only this many points one-process-per-point, and scale up")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = folder / "landau.cfc"
        model.write_text(LANDAU.replace("size N = 10000", f"size N = {args.n}"))
        for seed in range(args.seeds):
            np.save(folder / f"eta0_{seed}.npy",
                    np.random.default_rng(seed).uniform(0.0, 1.0, args.n))
        data = {"eta0": str(folder / "eta0_{seed}.npy")}
        options = dict(seeds=args.seeds, data=data, observe=["eta:mean"])
        cfc.load(model).compile()  # every way below finds the kernels in the cache
        print(f"Landau sweep: 21 a-values x {args.seeds} seeds, N = {args.n}; {_load()}")

        start = time.perf_counter()
        serial = cfc.sweep(model, {"a": A_VALUES}, workers=0, **options)
        t_serial = time.perf_counter() - start
        points = len(serial)
        print(f"  serial, one process       {t_serial:8.2f} s  ({1e3 * t_serial / points:.1f} "
              f"ms/point, relaxation alone {1e3 * serial['wall_s'].mean():.1f} ms)")

        start = time.perf_counter()
        dask = cfc.sweep(model, {"a": A_VALUES}, workers=args.workers, **options)
        t_dask = time.perf_counter() - start
        same = dask.drop("wall_s").equals(serial.drop("wall_s"))
        print(f"  LocalCluster, {args.workers} workers   {t_dask:8.2f} s  (incl. cluster start; "
              f"rows equal serial: {same})")

        todo = [(a, s) for a in np.linspace(-1, 1, 21) for s in range(args.seeds)]
        todo = todo[: args.subprocess_points] if args.subprocess_points else todo
        start = time.perf_counter()
        for a, seed in todo:
            subprocess.run([sys.executable, "-m", "cfc_dsl.cli.main", "run", str(model),
                            "--set", f"a={a}", "--data", f"eta0={folder / f'eta0_{seed}.npy'}",
                            "--json"], check=True, capture_output=True)
        t_proc = (time.perf_counter() - start) * points / len(todo)
        scaled = "" if len(todo) == points else f" (scaled from {len(todo)} points)"
        print(f"  one process per point     {t_proc:8.2f} s{scaled}")
        print(f"ratios: serial / LocalCluster {t_serial / t_dask:.2f}x, one-process-per-point"
              f" / LocalCluster {t_proc / t_dask:.2f}x, one-process-per-point / serial "
              f"{t_proc / t_serial:.2f}x")
        print(f"overhead per task on the cluster: "
              f"{1e3 * (t_dask * args.workers / points - serial['wall_s'].mean()):.1f} ms "
              f"(worker-time per point minus the relaxation, cluster start-up included); "
              f"{_load()}")


if __name__ == "__main__":
    main()
