"""Compile and start-up time of the `cfc` command line (issue 12).

1. Cold compile: `cfc compile examples/sequence_redemption.cfc` in a subprocess, each run
   with its own new, empty CFC_CACHE_DIR (so the parser tables, the OpenMP probe, parse,
   check, preparing the energies, rendering and the C compiler all run; its energies are
   the stdlib's, prepared from the package's stored views, codegen/prepared_store.py, while
   those are current, else derived with SymPy). Target: under 1.5 s (median of `--cold`
   runs, default 3). Beside it, the same compile into a used cache (one that has compiled
   another model, so only this model's kernels are missing), and the CPU seconds (user +
   sys, the compiler included) of both, which a busy machine inflates less than the wall
   clock. Then one cold compile in a child process, timed by stage (imports, parse, graph
   check, prepare, render, build; the line says whether SymPy was imported) and the build
   by step (each compiler run, with its start and end, since some run at once), and
   `python -X importtime` of the CLI's imports: the packages that cost most, and whether
   SymPy, setuptools or SciPy are among them.
   Then the prepared-energy store's A/B: the same cold compile with the store and with its
   lookups off (SymPy derives every energy), alternating, `--cold` runs each.
2. Cache-hit run: `cfc run examples/chain.cfc` with the kernels already in the cache,
   against the bare interpreter start-up `python -c "import numpy, cffi"`. The two are
   timed alternately (median of `--warm` runs each, default 7). Target: at most 2x. The
   heavy packages a cache-hit run imports are listed (from `sys.modules` at its exit), with
   how many modules it loads beside the bare start.

Bytecode caching is on by default (the children run without PYTHONDONTWRITEBYTECODE, after
one untimed warm-up that writes the .pyc files), as in a user's install; `--no-bytecode`
measures with it off, when every run compiles every module from source. The load average
is printed beside the figures: on a shared machine only same-run ratios mean much.

    python bench/compile_time.py
    python bench/compile_time.py --cold 5 --warm 11 [--no-bytecode]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPILE_MODEL = ROOT / "examples" / "sequence_redemption.cfc"
SEED_MODEL = ROOT / "examples" / "chain.cfc"  # compiled first into the "used" cache
RUN_MODEL = ROOT / "examples" / "chain.cfc"
TARGET_COLD = 1.5  # seconds
TARGET_STARTUP = 2.0  # x the start-up of `python -c "import numpy, cffi"`
HEAVY = ("sympy", "setuptools", "scipy", "matplotlib", "jinja2", "networkx", "filelock")
_ENTRY = re.compile(r"[0-9a-f]{64}")


def cfc_command() -> list[str]:
    """The installed `cfc` script next to this interpreter, else `python -m cfc_dsl.cli.main`."""
    script = Path(sys.executable).parent / "cfc"
    if script.exists():
        return [str(script)]
    found = shutil.which("cfc")
    return [found] if found else [sys.executable, "-m", "cfc_dsl.cli.main"]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f} (1/5 min) on {os.cpu_count()} CPUs"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of `cmd`; CPU counts its children too (the C compiler)."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    seconds, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return seconds, cpu


# One cold compile, stage by stage, as `cfc compile` runs them; every compiler run of the
# build is timed by wrapping compiler._run, and the cffi source and the load by wrapping
# the C target's fields. Later stages reuse the memoised earlier ones (derive, bounds).
STAGES = r"""
import dataclasses, json, sys, time
t0 = time.perf_counter()
marks = []
def mark(name):
    marks.append((name, time.perf_counter()))
import cfc_dsl.cli.main, cfc_dsl.cli.compile
from cfc_dsl.cli.common import print_findings
from cfc_dsl.frontend import load_file
mark("imports (CLI)")
from cfc_dsl.codegen.prepare import prepare_model
from cfc_dsl.codegen.render import render_model
from cfc_dsl.model import Target
from cfc_dsl.runtime.build import compiler, pipeline
mark("imports (codegen)")
steps = []
def timing(label, fn):
    def run(*args, **kw):
        a = time.perf_counter()
        try:
            return fn(*args, **kw)
        finally:
            steps.append((label(args), a, time.perf_counter()))
    return run
def what(args):
    source = next((a for a in args[0] if a.endswith((".c", ".cu"))), None)
    return f"compiler on {source}" if source else "link"
compiler._run = timing(what, compiler._run)
c = pipeline.TARGETS[Target.C]
pipeline.TARGETS[Target.C] = dataclasses.replace(
    c, emit=timing(lambda a: "cffi writes its module", c.emit),
    load=timing(lambda a: "load the module", c.load))
model = load_file(sys.argv[1]); mark("parse+check")
print_findings(model, False, None); mark("graph check")
prepare_model(model); mark("prepare (stored, or SymPy)")
render_model(model, Target.C); mark("render")
b0 = time.perf_counter()
pipeline.build(model); mark("build")
stages, last = {}, t0
for name, t in marks:
    stages[name], last = t - last, t
print(json.dumps({"stages": stages, "steps": [(n, a - b0, b - b0) for n, a, b in steps],
                  "sympy": "sympy" in sys.modules}))
"""


def stage_breakdown(env: dict[str, str]) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="cfc_bench_stages_") as cache:
        out = subprocess.run([sys.executable, "-c", STAGES, str(COMPILE_MODEL)], cwd=ROOT,
                             env=dict(env, CFC_CACHE_DIR=cache), capture_output=True,
                             text=True)
    if out.returncode != 0:
        raise SystemExit(f"the stage breakdown failed:\n{out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


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


HIT_PROBE = r"""
import sys
from cfc_dsl.cli.main import main
code = main(["run", sys.argv[1], "-q"])
print(len(sys.modules))
print(",".join(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[2].split(",")))))
raise SystemExit(code)
"""


def heavy_on_hit(env: dict[str, str]) -> tuple[str, int, int]:
    """The HEAVY packages in sys.modules when a cache-hit `cfc run` is done (not -X
    importtime: a stage that redirects stderr can swallow its lines), and how many modules
    it and the bare start have loaded (each one is a file found, read and run)."""
    out = subprocess.run([sys.executable, "-c", HIT_PROBE, str(RUN_MODEL), ",".join(HEAVY)],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    bare = subprocess.run([sys.executable, "-c", "import sys, numpy, cffi; print(len(sys.modules))"],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return lines[-1].strip(), int(lines[-2]), int(bare.stdout)


def fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def drop_entries(cache: Path) -> None:
    """Remove the kernel entries, keep what a used cache holds besides (parser tables, the
    OpenMP probe's answer): the next compile is cold for its model only."""
    for path in cache.iterdir():
        if _ENTRY.fullmatch(path.name):
            shutil.rmtree(path)


def cold_compiles(cfc: list[str], env: dict[str, str], runs: int) -> None:
    compile_cmd = [*cfc, "compile", str(COMPILE_MODEL)]
    fresh, used = [], []
    with tempfile.TemporaryDirectory(prefix="cfc_bench_used_") as used_cache:
        used_env = dict(env, CFC_CACHE_DIR=used_cache)
        timed([*cfc, "compile", str(SEED_MODEL)], used_env)  # another model: a used cache
        for _ in range(runs):
            with tempfile.TemporaryDirectory(prefix="cfc_bench_cold_") as cache:
                fresh.append(timed(compile_cmd, dict(env, CFC_CACHE_DIR=cache)))
            used.append(timed(compile_cmd, used_env))
            drop_entries(Path(used_cache))
    name = COMPILE_MODEL.relative_to(ROOT)
    median = statistics.median(w for w, _ in fresh)
    print(f"\ncold `cfc compile {name}` ({load()})")
    for label, runs_ in (("fresh cache", fresh), ("used cache ", used)):
        print(f"  {label}: wall [s] {fmt([w for w, _ in runs_])}; median "
              f"{statistics.median(w for w, _ in runs_):.3f} s, CPU median "
              f"{statistics.median(c for _, c in runs_):.3f} s")
    print(f"  target: fresh-cache median < {TARGET_COLD:g} s: "
          f"{'met' if median < TARGET_COLD else 'MISSED'} ({median:.3f} s)")

    breakdown = stage_breakdown(env)
    stages = dict(breakdown["stages"])  # type: ignore[call-overload]
    print(f"  one cold compile by stage [s] ({load()}): "
          + ", ".join(f"{k} {v:.3f}" for k, v in stages.items())
          + f"; total {sum(stages.values()):.3f}; SymPy imported: "
          + ("yes" if breakdown["sympy"] else "no (every energy stored)"))
    print("  its build by step [s from the build's start]: " + ", ".join(
        f"{n} {a:.2f}-{b:.2f}" for n, a, b in breakdown["steps"]))  # type: ignore[attr-defined]
    for module in ("cfc_dsl.cli.main", "cfc_dsl.codegen.render"):
        tops = sorted(import_times(module, env).items(), key=lambda kv: -kv[1])
        heavy = [f"{k} {dict(tops)[k]:.3f}" for k in HEAVY if k in dict(tops)]
        print(f"  python -X importtime -c 'import {module}': "
              + ", ".join(f"{k} {v:.3f}" for k, v in tops[:5])
              + f"  (of {'/'.join(HEAVY)}: {', '.join(heavy) or 'none'})")


def cache_hit_runs(cfc: list[str], env: dict[str, str], runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cfc_bench_warm_") as cache:
        env = dict(env, CFC_CACHE_DIR=cache)
        run_cmd = [*cfc, "run", str(RUN_MODEL)]
        bare_cmd = [sys.executable, "-c", "import numpy, cffi"]
        timed(run_cmd, env)  # fills the cache
        timed(bare_cmd, env)  # warms the page cache for the interpreter itself
        pairs = [(timed(run_cmd, env)[0], timed(bare_cmd, env)[0]) for _ in range(runs)]
        heavy, modules, bare_modules = heavy_on_hit(env)
    runs_, bares = [r for r, _ in pairs], [b for _, b in pairs]
    run_median, bare_median = statistics.median(runs_), statistics.median(bares)
    ratio = run_median / bare_median
    print(f"\ncache-hit `cfc run {RUN_MODEL.relative_to(ROOT)}` vs `python -c \"import numpy, "
          f"cffi\"` ({load()})")
    print(f"  cfc run [s]    : {fmt(runs_)}")
    print(f"  bare start [s] : {fmt(bares)}")
    print(f"  medians        : {run_median:.3f} s vs {bare_median:.3f} s")
    print(f"  ratio          : {ratio:.2f}x   target <= {TARGET_STARTUP:g}x: "
          f"{'met' if ratio <= TARGET_STARTUP else 'MISSED'}")
    print(f"  heavy packages imported by the cache-hit run: {heavy or 'none'}; modules "
          f"loaded: {modules} (the bare start: {bare_modules})")


# A cold compile through main(), with the prepared-energy store as shipped, or with its
# lookups off (every energy derived with SymPy, as before codegen/prepared_store.py)
AB_COMPILE = r"""
import sys
if sys.argv[2] == "off":
    from cfc_dsl.codegen import prepared_store
    prepared_store.lookup = lambda jobs: {}
from cfc_dsl.cli.main import main
raise SystemExit(main(["compile", sys.argv[1]]))
"""


def store_ab(env: dict[str, str], runs: int) -> None:
    """The store's A/B in one run: fresh caches, the two alternating, medians and ratio."""
    walls: dict[str, list[float]] = {"on": [], "off": []}
    cpus: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(runs):
        for mode in ("off", "on"):
            with tempfile.TemporaryDirectory(prefix="cfc_bench_ab_") as cache:
                wall, cpu = timed([sys.executable, "-c", AB_COMPILE, str(COMPILE_MODEL), mode],
                                  dict(env, CFC_CACHE_DIR=cache))
            walls[mode].append(wall)
            cpus[mode].append(cpu)
    med = {m: (statistics.median(walls[m]), statistics.median(cpus[m])) for m in walls}
    print(f"\nprepared-energy store A/B, cold compile, alternating ({load()})")
    for mode, label in (("off", "store off (SymPy)"), ("on", "store on (shipped)")):
        print(f"  {label}: wall [s] {fmt(walls[mode])}; median {med[mode][0]:.3f} s, "
              f"CPU median {med[mode][1]:.3f} s")
    print(f"  on/off: wall {med['on'][0] / med['off'][0]:.2f}x, "
          f"CPU {med['on'][1] / med['off'][1]:.2f}x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cold", type=int, default=3, help="cold compiles (default 3)")
    ap.add_argument("--warm", type=int, default=7, help="cache-hit runs and bare start-ups (default 7)")
    ap.add_argument("--no-bytecode", action="store_true",
                    help="run the children with PYTHONDONTWRITEBYTECODE=1")
    args = ap.parse_args(argv)

    cfc = cfc_command()
    env = {k: v for k, v in os.environ.items() if k not in ("CFC_DEBUG", "PYTHONDONTWRITEBYTECODE")}
    if args.no_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    print(f"cfc command: {' '.join(cfc)}; python {sys.version.split()[0]}; {load()}")
    with tempfile.TemporaryDirectory(prefix="cfc_bench_pyc_") as cache:  # writes the .pyc
        timed([*cfc, "compile", str(SEED_MODEL)], dict(env, CFC_CACHE_DIR=cache))
    print("bytecode caching: " + ("off (PYTHONDONTWRITEBYTECODE=1: every run compiles every "
                                  "module)" if args.no_bytecode else
                                  "on (.pyc written by an untimed warm-up run)"))
    cold_compiles(cfc, env, args.cold)
    store_ab(env, args.cold)
    cache_hit_runs(cfc, env, args.warm)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
