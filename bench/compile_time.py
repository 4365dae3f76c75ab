"""Compile and start-up time of the `cfc` command line.

1. Cold compile: `cfc compile examples/sequence_redemption.cfc` in a subprocess, each run
   with its own new, empty CFC_CACHE_DIR (so parse, check, SymPy derivation, rendering and
   the C compiler all run). Target: under 1.5 s (median of `--cold` runs, default 3).
   Then one cold compile in a child process, timed by stage (imports, parse and check,
   derive, bounds, render, compiler), and `python -X importtime` of the CLI's imports:
   the packages that cost most, and whether SymPy, setuptools or SciPy are among them.
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
TARGET_COLD = 1.5  # seconds
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


STAGES = r"""
import json, sys, time
t = [time.perf_counter()]
import cfc_dsl as cfc
from cfc_dsl.codegen.bounds import lower_bounds
from cfc_dsl.codegen.render import render_model
from cfc_dsl.derive import derive_model
from cfc_dsl.model import Target
from cfc_dsl.runtime.build.pipeline import build
t.append(time.perf_counter())
model = cfc.load(sys.argv[1]); t.append(time.perf_counter())
derived = derive_model(model); t.append(time.perf_counter())
lower_bounds(derived); t.append(time.perf_counter())
render_model(model, Target.C); t.append(time.perf_counter())
build(model); t.append(time.perf_counter())  # renders again from the memoised stages
names = ["imports", "parse+check", "derive", "bounds", "render", "build (compiler)"]
print(json.dumps(dict(zip(names, [b - a for a, b in zip(t, t[1:])]))))
"""


def stage_breakdown(env: dict[str, str]) -> dict[str, float]:
    import json

    with tempfile.TemporaryDirectory(prefix="cfc_bench_stages_") as cache:
        out = subprocess.run([sys.executable, "-c", STAGES, str(COMPILE_MODEL)], cwd=ROOT,
                             env=dict(env, CFC_CACHE_DIR=cache), capture_output=True,
                             text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


HEAVY = ("sympy", "setuptools", "scipy")


def import_times(module: str, env: dict[str, str]) -> dict[str, float]:
    """Cumulative seconds per top-level package of `python -X importtime -c 'import M'`."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    tops: dict[str, float] = {}
    for line in out.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].strip()
        if name.split(".")[0] in HEAVY and "." not in name:  # nested under cfc_dsl too
            tops[name] = tops.get(name, 0.0) + int(parts[1]) / 1e6
        elif parts[2].startswith(" ") and not parts[2].startswith("  "):  # top level
            tops[name.split(".")[0]] = tops.get(name.split(".")[0], 0.0) + int(parts[1]) / 1e6
    return tops


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

    stages = stage_breakdown(base_env)
    print("  one cold compile by stage [s]: " + ", ".join(f"{k} {v:.3f}"
                                                       for k, v in stages.items()))
    for module in ("cfc_dsl.cli.main", "cfc_dsl.codegen.render"):
        tops = sorted(import_times(module, base_env).items(), key=lambda kv: -kv[1])
        heavy = [f"{k} {dict(tops)[k]:.3f}" for k in HEAVY if k in dict(tops)]
        print(f"  python -X importtime -c 'import {module}': "
              + ", ".join(f"{k} {v:.3f}" for k, v in tops[:5])
              + f"  (of sympy/setuptools/scipy: {', '.join(heavy) or 'none'})")

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
