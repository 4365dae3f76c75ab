"""Compile and start-up time of the `cfc` command line.

1. Cold compile: `cfc compile examples/sequence_redemption.cfc` in a subprocess, each run
   with its own new, empty CFC_CACHE_DIR (so parse, check, SymPy derivation, rendering and
   the C compiler all run). Target: under 3 s (median of `--cold` runs, default 3).
2. Cache-hit run: `cfc run examples/chain.cfc` with the kernels already in the cache,
   against the bare interpreter start-up `python -c "import numpy, cffi"`. The two are
   timed alternately (median of `--warm` runs each, default 7). Target: at most 4x.

    python bench/compile_time.py
    python bench/compile_time.py --cold 5 --warm 11
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPILE_MODEL = ROOT / "examples" / "sequence_redemption.cfc"
RUN_MODEL = ROOT / "examples" / "chain.cfc"
TARGET_COLD = 3.0  # seconds
TARGET_STARTUP = 4.0  # x the start-up of `python -c "import numpy, cffi"`


def cfc_command() -> list[str]:
    """The installed `cfc` script next to this interpreter, else `python -m cfc_dsl.cli.main`."""
    script = Path(sys.executable).parent / "cfc"
    if script.exists():
        return [str(script)]
    found = shutil.which("cfc")
    return [found] if found else [sys.executable, "-m", "cfc_dsl.cli.main"]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return seconds


def fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cold", type=int, default=3, help="cold compiles (default 3)")
    ap.add_argument("--warm", type=int, default=7, help="cache-hit runs and bare start-ups (default 7)")
    args = ap.parse_args(argv)

    cfc = cfc_command()
    base_env = {k: v for k, v in os.environ.items() if k != "CFC_DEBUG"}
    print(f"cfc command: {' '.join(cfc)}; python {sys.version.split()[0]}; {os.cpu_count()} CPUs")

    # 1. cold compiles, each into a fresh cache
    cold = []
    for _ in range(args.cold):
        with tempfile.TemporaryDirectory(prefix="cfc_bench_cold_") as cache:
            cold.append(timed([*cfc, "compile", str(COMPILE_MODEL)],
                              dict(base_env, CFC_CACHE_DIR=cache)))
    cold_median = statistics.median(cold)
    print(f"\ncold `cfc compile {COMPILE_MODEL.relative_to(ROOT)}` (fresh cache each time)")
    print(f"  runs [s]: {fmt(cold)}")
    print(f"  median  : {cold_median:.3f} s   target < {TARGET_COLD:g} s: "
          f"{'met' if cold_median < TARGET_COLD else 'MISSED'}")

    # 2. cache-hit run vs bare interpreter start-up, alternating
    with tempfile.TemporaryDirectory(prefix="cfc_bench_warm_") as cache:
        env = dict(base_env, CFC_CACHE_DIR=cache)
        run_cmd = [*cfc, "run", str(RUN_MODEL)]
        bare_cmd = [sys.executable, "-c", "import numpy, cffi"]
        timed(run_cmd, env)  # fills the cache
        timed(bare_cmd, env)  # warms the page cache for the interpreter itself
        runs, bares = [], []
        for _ in range(args.warm):
            runs.append(timed(run_cmd, env))
            bares.append(timed(bare_cmd, env))
    run_median, bare_median = statistics.median(runs), statistics.median(bares)
    ratio = run_median / bare_median
    print(f"\ncache-hit `cfc run {RUN_MODEL.relative_to(ROOT)}` vs `python -c \"import numpy, cffi\"`")
    print(f"  cfc run [s]    : {fmt(runs)}")
    print(f"  bare start [s] : {fmt(bares)}")
    print(f"  medians        : {run_median:.3f} s vs {bare_median:.3f} s")
    print(f"  ratio          : {ratio:.2f}x   target <= {TARGET_STARTUP:g}x: "
          f"{'met' if ratio <= TARGET_STARTUP else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
