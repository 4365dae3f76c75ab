"""The C toolchain: which compiler command, its version and the flags, as one frozen value.

Everything here is part of the cache key. `CC` may be a command with words
(`CC="ccache gcc"`): it is split like a shell would, and the whole of it is the compiler.
A missing compiler is an environment error (exit 3) that names it and says how to install one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from functools import lru_cache

from cfc_dsl.diagnostics import CfcError, ErrorKind

# -g0: no debug info, so the module carries no build path and rebuilds are byte-identical.
# -O1, not -O3: the kernels wait on gathers and scatters through index tables, which -O3
# neither vectorises nor unrolls into anything faster (same-process round robin, gradient
# throughput model: -O1/-O3 time 0.94-1.03 at N = 1e3..1e6; a 300-term polynomial energy
# 1.07, within the noise of that loaded run), while gcc takes 30-40% less CPU (the
# sequence_redemption kernels 0.9 s against 1.4 s; 100 energies 16 s against 27 s). No
# -O level changes a result: without -ffast-math and with -std=c99 (no FP contraction)
# every level computes the same IEEE operations, so energies and gradients are bitwise the
# same (checked by the same bench before timing).
C_FLAGS = ("-O1", "-std=c99", "-fno-math-errno", "-g0")
# a Python extension module: position-independent and shared (macOS resolves the Python
# symbols when the module is loaded, as distutils does)
SHARED_FLAGS = ("-fPIC", "-shared") + (("-undefined", "dynamic_lookup")
                                       if sys.platform == "darwin" else ())
# the generated kernels compile warning-free (issue 13); the build adds these to their compile
WARNING_FLAGS = ("-Wall", "-Wextra", "-Werror")
STRICT_FLAGS = ("-std=c99", *WARNING_FLAGS)


@dataclass(frozen=True)
class Toolchain:
    compiler: str  # the compiler command, its program an absolute path ("/usr/bin/ccache gcc")
    version: str  # first line of `<compiler> --version`
    flags: tuple[str, ...]
    python_abi: str  # e.g. cpython-311-x86_64-linux-gnu

    @property
    def command(self) -> list[str]:
        """The compiler as an argument list, to which the flags and files are appended."""
        return shlex.split(self.compiler)


def compiler_name() -> str:
    return os.environ.get("CC", "").strip() or "cc"  # CC= (empty) means the default


def _resolve(command: str) -> str | None:
    """`command` with its program found on PATH, or None when there is none."""
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes
        return None
    path = shutil.which(words[0]) if words else None
    return None if path is None else shlex.join([path, *words[1:]])


def find_compiler() -> str | None:
    return _resolve(compiler_name())


def _fingerprint(command: str) -> list[list[object]]:
    """Each program in `command` (every word that names a file, on PATH or by path), as its
    real path, size, mtime and inode: an upgrade or another PATH changes it."""
    found = []
    for word in shlex.split(command):
        path = shutil.which(word) if os.sep not in word else word
        if path and os.path.isfile(path):
            st = os.stat(path)
            found.append([os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino])
    return found


@lru_cache(maxsize=8)
def compiler_version(command: str) -> str:
    """`command --version`'s first line, kept in the cache folder beside the programs'
    fingerprint: a cache-hit run does not start the compiler (10-20 ms) to learn it again."""
    from cfc_dsl.runtime.build.cache import cache_dir

    memo = cache_dir() / f"compiler-{hashlib.sha256(command.encode()).hexdigest()[:16]}.json"
    fingerprint = _fingerprint(command)
    try:
        known = json.loads(memo.read_text())
        if known["command"] == command and known["programs"] == fingerprint:
            return str(known["version"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    version = _run_version(command)
    try:  # a read-only or full cache folder only costs the subprocess next time
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f".{memo.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"command": command, "programs": fingerprint,
                                   "version": version}))
        os.replace(tmp, memo)
    except OSError:
        pass
    return version


def _run_version(command: str) -> str:
    """The first line `command --version` prints (through ccache: the real compiler's)."""
    import subprocess  # here: a cache hit reads the version from the cache folder
    try:
        out = subprocess.run([*shlex.split(command), "--version"], capture_output=True,
                             text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    lines = [line.strip() for line in (out.stdout or out.stderr).splitlines() if line.strip()]
    return lines[0] if lines else "unknown"


def python_abi() -> str:
    return str(sysconfig.get_config_var("SOABI") or sys.implementation.cache_tag)


def compiler_hint(tc: Toolchain) -> str:
    """How the user chose this compiler, for messages that ask them to check it."""
    if compiler_name() != "cc":
        return f"CC={compiler_name()!r}"
    return f"the default 'cc', {tc.compiler}; set CC to choose another"


def toolchain() -> Toolchain:
    """The toolchain that will build kernels, or a `CfcError` (exit 3) if there is none."""
    command = find_compiler()
    if command is None:
        raise CfcError(
            ErrorKind.ENVIRONMENT,
            f"no C compiler found (looked for '{compiler_name()}' on PATH)",
            None,
            "install one (Debian/Ubuntu: 'apt-get install gcc'; macOS: 'xcode-select --install'), "
            "set CC to its path, or run with '--backend python' to use the slower reference backend",
        )
    from cfc_dsl.runtime.build.openmp import openmp_flags

    version = compiler_version(command)
    flags = C_FLAGS + openmp_flags(command, version) + SHARED_FLAGS  # OpenMP: build/openmp.py
    return Toolchain(command, version, flags, python_abi())
