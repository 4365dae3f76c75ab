"""What cffi's ABI mode costs per kernel call against API mode, in one run.

The build opens the generated kernels in cffi's out-of-line ABI mode (`ffi.dlopen`), which
saves the compiled API-mode wrapper on every cache miss (docs/benchmarks.md, "Cold compile").
A call through ABI mode goes through libffi instead of a compiled wrapper, so each call costs
a little more. This script measures that: one small C function with the shape of an
energy-and-gradient kernel (a count, an index table, a parameter array, a weight, X and G) is
compiled twice from the same source, once as a plain library for `ffi.dlopen` and once as an
API-mode extension, and both are called round-robin with the same pre-cast cdata pointers
(and again with an `ffi.from_buffer` argument, as the backend passes x), at N = 10.

    python bench/cffi_modes.py [--calls 20000] [--repeat 9]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

import cffi
import numpy as np

SOURCE = r"""
#include <stdint.h>
double kernel(int64_t n, const int64_t *a, const double *w, double s,
              const double *X, double *G)
{
    double e = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        e += X[a[i]] * w[i] * s;
        G[a[i]] += w[i];
    }
    return e;
}
"""
CDEF = ("double kernel(int64_t n, const int64_t *a, const double *w, double s, "
        "const double *X, double *G);")


def build(folder: Path):
    """(abi_ffi, abi_lib, api_ffi, api_lib) from the same source and flags."""
    (folder / "kernel.c").write_text(SOURCE)
    library = folder / "libkernel.so"
    subprocess.run(["cc", "-O1", "-fPIC", "-shared", str(folder / "kernel.c"), "-o",
                    str(library)], check=True)
    abi = cffi.FFI()
    abi.cdef(CDEF)
    api = cffi.FFI()
    api.cdef(CDEF)
    api.set_source("_cfc_bench_api", SOURCE, extra_compile_args=["-O1"])
    built = api.compile(tmpdir=str(folder), verbose=False)
    spec = importlib.util.spec_from_file_location("_cfc_bench_api", built)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return abi, abi.dlopen(str(library)), module.ffi, module.lib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    n = 10
    a, w = np.arange(n, dtype=np.int64), np.ones(n)
    x, g = np.ones(n), np.zeros(n)
    print(f"python {sys.version.split()[0]}, cffi {cffi.__version__}; load average "
          f"{os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="cfc-cffi-modes-") as tmp:
        abi_ffi, abi_lib, api_ffi, api_lib = build(Path(tmp))
        calls = {}
        for mode, ffi, lib in (("ABI", abi_ffi, abi_lib), ("API", api_ffi, api_lib)):
            pa, pw = ffi.cast("int64_t *", a.ctypes.data), ffi.cast("double *", w.ctypes.data)
            px, pg = ffi.cast("double *", x.ctypes.data), ffi.cast("double *", g.ctypes.data)
            kernel = lib.kernel
            calls[mode, "cdata"] = lambda k=kernel, pa=pa, pw=pw, px=px, pg=pg: k(
                n, pa, pw, 1.0, px, pg)
            calls[mode, "from_buffer"] = lambda k=kernel, f=ffi, pa=pa, pw=pw, pg=pg: k(
                n, pa, pw, 1.0, f.from_buffer("double[]", x), pg)
        best = {key: float("inf") for key in calls}
        for _ in range(args.repeat):  # round robin, so load changes hit every variant alike
            for key, call in calls.items():
                seconds = timeit.timeit(call, number=args.calls) / args.calls
                best[key] = min(best[key], seconds)
    print(f"one kernel call at N = {n}, best of {args.repeat} x {args.calls} calls [us]:")
    for kind in ("cdata", "from_buffer"):
        abi, api = best["ABI", kind] * 1e6, best["API", kind] * 1e6
        print(f"  {kind:12s} ABI {abi:6.3f}  API {api:6.3f}  ABI - API {abi - api:+6.3f}  "
              f"ABI/API {abi / api:5.2f}x")
    print(f"after: load average {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
