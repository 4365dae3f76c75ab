"""How cold-compile time grows with model size: many energies, and one energy of many terms.

Each point is `cfc compile` in a fresh subprocess with its own empty CFC_CACHE_DIR (parse,
check, derive, CSE, bounds, printing, templates and the C compiler all run), timed by the
wall clock and by the CPU seconds of the process and its children (the compiler, the worker
processes): on a shared machine the wall time is an upper bound, the CPU time is not.
Models are generated here: N custom energies the size of the standard library's, each with
its own factor family; one energy that is a flat sum of N terms (`a + b - c ...`: the parser
regroups long chains, so no depth limit applies); and the same sum in parenthesised groups
of GROUP, as the bench had to write it before. Then, for the largest of each, one serial
compile in a child process split by stage in CPU seconds (the compiler's included), and,
for the largest energies model, the same
compile with CFC_COMPILE_WORKERS=1 (one process) against the default (a fork pool), as a
ratio of the same run. Targets (issue 13): 100 energies under 15 s, a 1,000-term sum
under 30 s; the machine's load is printed with each point.

    python bench/compile_scale.py
    python bench/compile_scale.py --energies 10 30 --terms 100 300 --grouped --no-stages
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_ENERGIES = (100, 15.0)  # (energies, seconds)
TARGET_TERMS = (1000, 30.0)  # (terms, seconds)

# stdlib-sized bodies, each energy with its own constants so that none is shared
_BODIES = (
    ("x; b = 1, h = 0", "{c}*x^2 + b*x^4 - h*x"),
    ("x, y; w = 1", "w*(x - y)^2 + {c}*relu(y - x)^2"),
    ("x, y; w = 1, beta = 1", "w*relu(beta*y - {c}*x)^2"),
    ("x; b = 0, t = 1", "{c}*(x - t)^2 + b*(x - t)^4"),
    ("g; w = 1, delta = 0", "-w*g*delta + {c}*g^2"),
)


def energies_model(n: int) -> str:
    lines = [f"model energies{n}", "size N = 16", "var u[N] in [0, 1] = 0.5"]
    for i in range(n):
        slots, body = _BODIES[i % len(_BODIES)]
        lines.append(f"energy e{i}({slots}) = {body.format(c=round(0.5 + i / 100, 3))}")
        args = "u[i], u[i+1]" if "," in slots.split(";")[0] else "u[i]"
        lines.append(f"factor f{i}[i in 0..N-1] = e{i}({args})")
    return "\n".join(lines) + "\n"


GROUP = 40  # terms per parenthesised group of the grouped variant


def sum_terms(n: int) -> list[str]:
    """The terms k*(x - c)^2 of the sum; every fifth is subtracted."""
    return [f"{k % 7 + 1}*(x - {k / n:.4f})^2" for k in range(n)]


def _joined(terms: list[str], first: int = 0) -> str:
    out = terms[0]
    for k, term in enumerate(terms[1:], first + 1):
        out += f" {'-' if k % 5 == 4 else '+'} {term}"
    return out


def terms_model(n: int, grouped: bool = False) -> str:
    terms = sum_terms(n)
    if grouped:
        body = " + ".join(f"({_joined(terms[k:k + GROUP], k)})" for k in range(0, n, GROUP))
    else:
        body = _joined(terms)
    return (f"model terms{n}\nvar u[4] in [0, 1] = 0.5\nenergy big(x) = {body}\n"
            "factor f[i in 0..4] = big(u[i])\n")


def cold_compile(text: str, name: str, env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and everything it waited for)."""
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp, f"{name}.cfc")
        model.write_text(text)
        env = dict(os.environ if env is None else env, CFC_CACHE_DIR=str(Path(tmp, "cache")))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "cfc_dsl.cli.main", "compile", str(model)],
                             env=env, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"compiling {name} failed ({out.returncode}):\n{out.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


STAGES = r"""
import json, resource, sys, time
def cpu():  # this process and the compiler runs it waited for
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + child.ru_utime + child.ru_stime
t = [cpu()]
laps = {}
def lap(stage):
    now = cpu()
    laps[stage] = laps.get(stage, 0.0) + now - t[0]
    t[0] = now
import cfc_dsl as cfc
from cfc_dsl.codegen.prepare import prepare_model
from cfc_dsl.codegen.render import render_model
from cfc_dsl.runtime.build.pipeline import build
lap("imports")
model = cfc.load(sys.argv[1]); lap("parse+check")
prepare_model(model, lap)  # derive, cse, bounds, print, per energy (serial: workers=1)
render_model(model); lap("templates")
build(model); lap("compiler")  # the prepared energies are memoised: templates again, gcc
print(json.dumps(laps))
"""


def stage_breakdown(text: str, name: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp, f"{name}.cfc")
        model.write_text(text)
        env = dict(os.environ, CFC_CACHE_DIR=str(Path(tmp, "cache")), CFC_COMPILE_WORKERS="1")
        out = subprocess.run([sys.executable, "-c", STAGES, str(model)], cwd=ROOT, env=env,
                             capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"timing the stages of {name} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load unknown"
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} cpus"


def curve(label: str, sizes: list[int], make: Callable[[int], str],
          target: tuple[int, float] | None) -> None:
    print(f"{label}:")
    previous: tuple[int, float] | None = None
    for n in sizes:
        seconds, cpu = cold_compile(make(n), f"{label.split()[0]}{n}")
        growth = ""
        if previous is not None:
            growth = f"  x{seconds / previous[1]:.2f} time for x{n / previous[0]:.2f} size"
        mark = ""
        if target is not None and n == target[0]:
            mark = f"  target < {target[1]:.0f} s: {'met' if seconds < target[1] else 'MISSED'}"
        print(f"  {n:>5}  {seconds:7.2f} s wall  {cpu:7.2f} s cpu  ({load()}){growth}{mark}",
              flush=True)
        previous = (n, seconds)


def stages(label: str, text: str) -> None:
    laps = stage_breakdown(text, label.split()[0])
    total = sum(laps.values())
    parts = "  ".join(f"{k} {v:.2f}" for k, v in laps.items())
    print(f"  stages of {label}, serial, CPU s ({load()}): {parts}  = {total:.2f}", flush=True)


def pool_ratio(n: int) -> None:
    text = energies_model(n)
    serial, serial_cpu = cold_compile(text, f"serial{n}", dict(os.environ, CFC_COMPILE_WORKERS="1"))
    pooled, pooled_cpu = cold_compile(text, f"pooled{n}")
    print(f"  {n} energies: one process {serial:.2f} s wall ({serial_cpu:.2f} s cpu), fork pool "
          f"{pooled:.2f} s wall ({pooled_cpu:.2f} s cpu): x{serial / pooled:.2f} wall ({load()})",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--energies", type=int, nargs="*", default=[10, 30, 100])
    ap.add_argument("--terms", type=int, nargs="*", default=[100, 300, 1000],
                    help="sizes of the flat sum")
    ap.add_argument("--grouped", type=int, nargs="*", default=[1000],
                    help="sizes of the sum in parenthesised groups")
    ap.add_argument("--no-stages", dest="stages", action="store_false",
                    help="skip the stage breakdown and the pool ratio")
    args = ap.parse_args(argv)
    if args.energies:
        curve("energies", args.energies, energies_model, TARGET_ENERGIES)
    if args.terms:
        curve("terms (flat sum)", args.terms, terms_model, TARGET_TERMS)
    if args.grouped:
        curve("terms (grouped sum)", args.grouped, lambda n: terms_model(n, grouped=True),
              TARGET_TERMS)
    if args.stages and args.energies:
        stages(f"energies {max(args.energies)}", energies_model(max(args.energies)))
        pool_ratio(max(args.energies))
    if args.stages and args.terms:
        stages(f"terms {max(args.terms)}", terms_model(max(args.terms)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
