"""OpenMP: does this C compiler build and link `-fopenmp`? Decided once per compiler.

The answer is a flag of the toolchain, so it is part of the cache key: kernels built with
OpenMP and without it never share an entry. A tiny test program is compiled the first
time a compiler is seen and the answer is kept in the cache folder, so a cache hit does
not run the compiler again. `CFC_OPENMP=0` turns OpenMP off (a single-threaded build).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
from functools import lru_cache
from pathlib import Path

from cfc_dsl.runtime.build.cache import cache_dir

OPENMP_FLAGS = ("-fopenmp",)
_TEST = """#include <omp.h>
int cfc_openmp_probe(void) { int n = 0;
#pragma omp parallel reduction(+:n)
  n += 1;
  return n + omp_get_max_threads(); }
"""
_SAID: list[bool] = []  # the single-threaded notice is said once per process


def disabled() -> bool:
    return os.environ.get("CFC_OPENMP", "").strip().lower() in ("0", "off", "no", "false")


def _memo(command: str, version: str) -> Path:
    digest = hashlib.sha256(f"{command}\n{version}".encode()).hexdigest()[:16]
    return cache_dir() / f"openmp-{digest}.json"


def _probe(command: str) -> bool:
    import subprocess  # here: the answer is remembered in the cache folder (_supported)
    import tempfile

    from cfc_dsl.runtime.build.compiler import compiler_env

    with tempfile.TemporaryDirectory(prefix="cfc-openmp-") as tmp:
        Path(tmp, "probe.c").write_text(_TEST)
        argv = [*shlex.split(command), *OPENMP_FLAGS, "-fPIC", "-shared", "probe.c",
                "-o", "probe.so"]
        try:
            out = subprocess.run(argv, cwd=tmp, env=compiler_env(), capture_output=True,
                                 stdin=subprocess.DEVNULL, timeout=120)
        except (OSError, subprocess.SubprocessError):
            return False
        return out.returncode == 0 and Path(tmp, "probe.so").is_file()


@lru_cache(maxsize=8)
def _supported(command: str, version: str) -> bool:
    memo = _memo(command, version)
    try:
        return bool(json.loads(memo.read_text())["openmp"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    found = _probe(command)
    try:  # a read-only or full cache folder only costs the probe next time
        memo.parent.mkdir(parents=True, exist_ok=True)
        memo.write_text(json.dumps({"compiler": command, "version": version, "openmp": found}))
    except OSError:
        pass
    return found


def openmp_flags(command: str, version: str) -> tuple[str, ...]:
    """`-fopenmp` when the compiler supports it and CFC_OPENMP does not turn it off."""
    return () if disabled() or not _supported(command, version) else OPENMP_FLAGS


def say_single_threaded(requested: int) -> None:
    """Once per process: threads were asked for, but the kernels were built without OpenMP."""
    if _SAID:
        return
    _SAID.append(True)
    why = "CFC_OPENMP=0" if disabled() else "the C compiler does not support OpenMP"
    print(f"cfc: note: running single-threaded ({requested} threads asked for): {why}",
          file=sys.stderr)


__all__ = ["OPENMP_FLAGS", "disabled", "openmp_flags", "say_single_threaded"]
