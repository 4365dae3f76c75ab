"""How cold-compile time grows with model size: many energies, and one energy of many terms.

Each point is `cfc compile` in a fresh subprocess with its own empty CFC_CACHE_DIR (parse,
check, derive, bounds, render and the C compiler all run). Models are generated here:
N custom energies the size of the standard library's, each with its own factor family, and
one energy that is a sum of N terms, in parenthesised groups of GROUP (a flat sum of more
than a few hundred terms nests past the parser's depth limit and is refused with a hint).
Targets (issue 13): 100 energies under 15 s, a 1,000-term sum under 30 s. The machine's
load is printed with each point: on a shared machine the times are upper bounds.

    python bench/compile_scale.py
    python bench/compile_scale.py --energies 10 30 --terms 100
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
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


GROUP = 40  # terms per parenthesised group: a flat sum nests past the parser's MAX_DEPTH


def terms_model(n: int) -> str:
    terms = [f"{k % 7 + 1}*(x - {k / n:.4f})^2" for k in range(n)]
    body = " + ".join(f"({' + '.join(terms[k:k + GROUP])})" for k in range(0, n, GROUP))
    return (f"model terms{n}\nvar u[4] in [0, 1] = 0.5\nenergy big(x) = {body}\n"
            "factor f[i in 0..4] = big(u[i])\n")


def cold_compile(text: str, name: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp, f"{name}.cfc")
        model.write_text(text)
        env = dict(os.environ, CFC_CACHE_DIR=str(Path(tmp, "cache")))
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "cfc_dsl.cli.main", "compile", str(model)],
                             env=env, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"compiling {name} failed ({out.returncode}):\n{out.stderr}")
    return seconds


def load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load unknown"
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} cpus"


def curve(label: str, sizes: list[int], make: object, target: tuple[int, float]) -> None:
    print(f"{label}:")
    previous: tuple[int, float] | None = None
    for n in sizes:
        seconds = cold_compile(make(n), f"{label}{n}")  # type: ignore[operator]
        growth = ""
        if previous is not None:
            growth = f"  x{seconds / previous[1]:.2f} time for x{n / previous[0]:.2f} size"
        mark = ""
        if n == target[0]:
            mark = f"  target < {target[1]:.0f} s: {'met' if seconds < target[1] else 'MISSED'}"
        print(f"  {n:>5}  {seconds:7.2f} s  ({load()}){growth}{mark}")
        previous = (n, seconds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--energies", type=int, nargs="*", default=[10, 30, 100])
    ap.add_argument("--terms", type=int, nargs="*", default=[100, 300, 1000])
    args = ap.parse_args(argv)
    curve("energies", args.energies, energies_model, TARGET_ENERGIES)
    curve("terms", args.terms, terms_model, TARGET_TERMS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
