"""The build's compiler work, now against the recipe before issue 12's change, in one run.

For the rendered kernels of each model, both recipes run `--repeat` times, alternately:

  * before: a -Wall -Wextra -Werror -fsyntax-only check of kernels.c; then kernels.c at -O3
    and cffi's API-mode C wrapper at -O0 as two objects at once; then one link;
  * now:    one compiler run, kernels.c at -O1 with -Wall -Wextra -Werror straight into a
            plain shared library (cffi opens it in ABI mode: runtime/build/targets.py).

It prints the median wall and CPU seconds (user + sys of the compilers) of each and the
ratios now/before, with the load average: on a shared machine the CPU seconds are the
steadier figure. Models: examples/sequence_redemption.cfc, and with `--energies K` also
bench/compile_scale.py's model of K stdlib-sized energies.

    python bench/build_recipe.py [--repeat 3] [--energies 100]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import cffi  # noqa: E402
from cffi import recompiler  # noqa: E402
from compile_scale import energies_model  # noqa: E402

import cfc_dsl  # noqa: E402
from cfc_dsl.codegen.render import render_model  # noqa: E402
from cfc_dsl.model import Target  # noqa: E402
from cfc_dsl.runtime.build.toolchain import STRICT_FLAGS, WARNING_FLAGS, toolchain  # noqa: E402

BEFORE_KERNELS = ("-O3", "-std=c99", "-fno-math-errno", "-g0")
BEFORE_WRAPPER = ("-O0", "-std=c99", "-g0", "-fPIC")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f} (1/5 min) on {os.cpu_count()} CPUs"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wait(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"{' '.join(map(str, p.args))} failed")  # type: ignore[arg-type]


def before(tmp: Path) -> None:
    cc = toolchain()
    omp = [f for f in cc.flags if f == "-fopenmp"]
    run = lambda *argv: subprocess.Popen([*cc.command, *argv], cwd=tmp)  # noqa: E731
    _wait([run(*STRICT_FLAGS, "-fsyntax-only", "kernels.c")])
    _wait([run(*BEFORE_KERNELS, *omp, "-fPIC", "-c", "kernels.c", "-o", "kernels.o"),
           run(*BEFORE_WRAPPER, "-I", sysconfig.get_paths()["include"], "-I", ".", "-c",
               "wrapper.c", "-o", "wrapper.o")])
    _wait([run(*BEFORE_KERNELS, *omp, "-fPIC", "-shared", "kernels.o", "wrapper.o", "-o",
               "before.so", "-lm")])


def now(tmp: Path) -> None:
    cc = toolchain()
    _wait([subprocess.Popen([*cc.command, *cc.flags, *WARNING_FLAGS, "kernels.c", "-o",
                             "now.so", "-lm"], cwd=tmp)])


def compare(name: str, model: cfc_dsl.Model, repeat: int) -> None:
    rendered = render_model(model, Target.C)
    times: dict[str, list[tuple[float, float]]] = {"before": [], "now": []}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "kernels.c").write_text(rendered.source)
        (tmp / "kernels.h").write_text(rendered.header)
        ffi = cffi.FFI()
        ffi.cdef(rendered.cdef)
        recompiler.recompile(ffi, "_cfc_before", '#include "kernels.h"\n',
                             c_file=str(tmp / "wrapper.c"), call_c_compiler=False,
                             uses_ffiplatform=False, compiler_verbose=False)
        for _ in range(repeat):
            for label, recipe in (("before", before), ("now", now)):
                c0, t0 = _cpu(), time.perf_counter()
                recipe(tmp)
                times[label].append((time.perf_counter() - t0, _cpu() - c0))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
           for k, v in times.items()}
    (wb, cb), (wn, cn) = med["before"], med["now"]
    print(f"{name} ({len(rendered.source) // 1024} KB of kernels, "
          f"{rendered.cdef.count(');')} entry points; {load()})")
    print(f"  before: wall {wb:.2f} s, CPU {cb:.2f} s;  now: wall {wn:.2f} s, CPU {cn:.2f} s;"
          f"  now/before: wall {wn / wb:.2f}x, CPU {cn / cb:.2f}x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--energies", type=int, default=0, help="also K stdlib-sized energies")
    args = ap.parse_args(argv)
    compare("sequence_redemption", cfc_dsl.load(ROOT / "examples" / "sequence_redemption.cfc"),
            args.repeat)
    if args.energies:
        compare(f"{args.energies} energies", cfc_dsl.loads(energies_model(args.energies)),
                args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
