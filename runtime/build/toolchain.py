"""The C toolchain: which compiler, its version and the flags, as one frozen value.

Everything here is part of the cache key. A missing compiler is an environment error
(exit 3) whose message names the compiler and says how to install one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from functools import lru_cache

from cfc_dsl.diagnostics import CfcError, ErrorKind

# -g0: no debug info, so the module carries no build path and rebuilds are byte-identical
C_FLAGS = ("-O3", "-std=c99", "-fno-math-errno", "-g0")
STRICT_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror")


@dataclass(frozen=True)
class Toolchain:
    compiler: str  # absolute path
    version: str  # first line of `cc --version`
    flags: tuple[str, ...]
    python_abi: str  # e.g. cpython-311-x86_64-linux-gnu


def compiler_name() -> str:
    return os.environ.get("CC", "").strip() or "cc"  # CC= (empty) means the default


def find_compiler() -> str | None:
    name = compiler_name().split()[0]
    return shutil.which(name)


@lru_cache(maxsize=4)
def _version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return "unknown"
    return (out.stdout or out.stderr).splitlines()[0].strip() if (out.stdout or out.stderr) else "unknown"


def python_abi() -> str:
    return str(sysconfig.get_config_var("SOABI") or sys.implementation.cache_tag)


def toolchain() -> Toolchain:
    """The toolchain that will build kernels, or a `CfcError` (exit 3) if there is none."""
    path = find_compiler()
    if path is None:
        raise CfcError(
            ErrorKind.ENVIRONMENT,
            f"no C compiler found (looked for '{compiler_name()}' on PATH)",
            None,
            "install one (Debian/Ubuntu: 'apt-get install gcc'; macOS: 'xcode-select --install'), "
            "set CC to its path, or run with '--backend python' to use the slower reference backend",
        )
    return Toolchain(path, _version(path), C_FLAGS, python_abi())
