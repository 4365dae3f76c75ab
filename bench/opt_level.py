"""Kernel speed and compile cost at each gcc -O level, in one run (issue 12: the build's -O level).

The gradient-throughput model (`bench/grad_throughput.py`: Landau terms, random quadratic
and directed-hinge edges) is built once per level in `--levels` (default -O1 and -O3; the
first is the baseline), by replacing the level in `toolchain.C_FLAGS`, each into the same
fresh cache (another flag, another entry). Before anything is timed, every level must give
the same energy and gradient bits. Then one energy+gradient evaluation on one thread is
timed round-robin across the levels (median of `--repeat` batches of >= 50 ms), per N in
`--sizes`, and the CPU seconds of gcc on the model's kernels at each level are printed.
Only same-run ratios mean much on a shared machine; the load average is printed.

    python bench/opt_level.py [--sizes 1e4,1e5,1e6] [--levels -O1,-O2,-O3] [--repeat 9]
"""

from __future__ import annotations

import argparse
import atexit
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import grad_throughput  # noqa: E402  (the model)

import cfc_dsl  # noqa: E402
from cfc_dsl.codegen.render import render_model  # noqa: E402
from cfc_dsl.model import Target  # noqa: E402
from cfc_dsl.runtime.build import toolchain  # noqa: E402


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f} (1/5 min) on {os.cpu_count()} CPUs"


def gcc_cpu(source: str, flags: tuple[str, ...]) -> float:
    """CPU seconds of the compiler on `source` as the build compiles it (object only)."""
    tc = toolchain.toolchain()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "kernels.c").write_text(source)
        link_only = {"-shared", "-undefined", "dynamic_lookup"}
        argv = [*tc.command, *[f for f in flags if f not in link_only], "-c", "kernels.c"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, cwd=tmp, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1e4,1e5,1e6")
    ap.add_argument("--levels", default="-O1,-O3")
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args(argv)
    levels = args.levels.split(",")
    cache = tempfile.mkdtemp(prefix="cfc_bench_opt_")
    atexit.register(shutil.rmtree, cache, True)  # nothing is left behind
    os.environ["CFC_CACHE_DIR"] = cache
    base = toolchain.C_FLAGS
    model = cfc_dsl.loads(grad_throughput.MODEL)
    compiled = {}
    for level in levels:
        toolchain.C_FLAGS = (level, *(f for f in base if not f.startswith("-O")))
        compiled[level] = model.compile()
    toolchain.C_FLAGS = base
    print(f"{load()}; flags {' '.join(base)} with the -O level replaced")
    source = render_model(model, Target.C).source
    flags = {lv: (lv, *toolchain.toolchain().flags[1:]) for lv in levels}
    print("gcc CPU on these kernels [s]: " + ", ".join(
        f"{lv} {gcc_cpu(source, flags[lv]):.2f}" for lv in levels))
    for n in (int(float(s)) for s in args.sizes.split(",")):
        rng = np.random.default_rng(0)
        data = {"edges": rng.integers(0, n, (2 * n, 2)), "w": rng.uniform(0.1, 2, 2 * n),
                "hedges": rng.integers(0, n, (2 * n, 2)), "hw": rng.uniform(0.1, 2, 2 * n)}
        x = rng.uniform(0, 1, n)
        backends = {lv: c.bind(sizes={"N": n}, data=data, threads=1).backend
                    for lv, c in compiled.items()}
        results = {lv: b.energy_and_grad(x) for lv, b in backends.items()}
        ref = results[levels[0]]
        for lv, (f, _, g) in results.items():
            if f != ref[0] or not np.array_equal(g, ref[2]):
                raise SystemExit(f"{lv} and {levels[0]} give different bits at N = {n}")
        times: dict[str, list[float]] = {lv: [] for lv in levels}
        for _ in range(args.repeat):
            for lv, backend in backends.items():
                count, t0 = 0, time.perf_counter()
                while time.perf_counter() - t0 < 0.05:
                    backend.energy_and_grad(x)
                    count += 1
                times[lv].append((time.perf_counter() - t0) / count)
        med = {lv: statistics.median(v) for lv, v in times.items()}
        print(f"N = {n:>9,}: same bits; " + ", ".join(
            f"{lv} {med[lv] * 1e3:.3f} ms ({med[lv] / med[levels[0]]:.3f}x)" for lv in levels)
            + f"  [{load()}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
