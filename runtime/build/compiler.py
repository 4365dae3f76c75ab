"""Running the compiler for the build stage, and deciding whom to blame when it fails.

The compiler sees only what the cache key records: the environment variables through which
a compiler or a build system picks up flags or search paths (CFLAGS, CPATH, ...) are removed
from its environment. The generated source is checked with -Werror first. When a compile
fails, the same command on a trivial file tells a broken compiler (an environment error)
from generated code the compiler rejects (a bug in cfc), and a full disk is named as such.
"""

from __future__ import annotations

import errno
import os
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.runtime.build import heal

LOG_TAIL = 4000  # characters of compiler output quoted in an error's hint

# Read by gcc, clang, nvcc or the build tools around them; none of them is in the cache key.
IGNORED_ENV = frozenset({
    "CFLAGS", "CPPFLAGS", "CXXFLAGS", "LDFLAGS", "LDLIBS", "CPATH", "C_INCLUDE_PATH",
    "CPLUS_INCLUDE_PATH", "OBJC_INCLUDE_PATH", "LIBRARY_PATH", "GCC_EXEC_PREFIX",
    "COMPILER_PATH", "DEPENDENCIES_OUTPUT", "SUNPRO_DEPENDENCIES", "GCC_COMPARE_DEBUG",
    "CCC_OVERRIDE_OPTIONS", "NVCC_PREPEND_FLAGS", "NVCC_APPEND_FLAGS", "NVCC_CCBIN",
})
_PROBE = "int cfc_probe(int x) { return x + 1; }\n"
_DISK_FULL = "No space left on device"


def compiler_env() -> dict[str, str]:
    """This process's environment less IGNORED_ENV: what the compiler subprocess gets."""
    return {k: v for k, v in os.environ.items() if k not in IGNORED_ENV}


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=compiler_env(), capture_output=True,
                          stdin=subprocess.DEVNULL, text=True, encoding="utf-8",
                          errors="replace")


def _compiles_trivially(command: Callable[[str], list[str]], source: str, staging: Path) -> bool:
    """Does the same command build a one-line file? If so, the compiler itself works. Each
    source gets its own probe folder: units that fail at once probe at once."""
    suffix = Path(source).suffix
    probe = staging / f"probe-{Path(source).stem}"
    try:
        probe.mkdir(exist_ok=True)
        (probe / f"probe{suffix}").write_text(_PROBE)
        return _run(command(f"probe{suffix}"), probe).returncode == 0
    except OSError:
        return False


def run_compiler(name: str, label: str, advice: str, command: Callable[[str], list[str]],
                 source: str, staging: Path, log: str) -> None:
    """Run `command(source)` in `staging`, its output appended to `log`; raise on failure.

    `name` is the model's, `label` names the compiler in messages, `advice` is the hint
    for a compiler that does not work."""
    argv = command(source)
    try:
        out = _run(argv, staging)
    except OSError as exc:
        raise CfcError(ErrorKind.ENVIRONMENT, f"{label} could not be started "
                       f"({shlex.join(argv[:1])}): {exc.strerror or exc}", None, advice) from None
    output = out.stdout + out.stderr
    with (staging / log).open("a") as fh:
        fh.write(shlex.join(argv) + "\n" + output)
    if out.returncode == 0:
        return
    quoted = "\n" + output[-LOG_TAIL:].rstrip() if output else ""
    if _DISK_FULL in output:
        raise heal.disk_error(staging.parent, OSError(errno.ENOSPC, _DISK_FULL),
                              f"compiling the kernels of '{name}'")
    if _compiles_trivially(command, source, staging):
        raise CfcError(ErrorKind.ENVIRONMENT, f"{label} rejected the code cfc generated for "
                       f"'{name}' (exit status {out.returncode}): this is a bug in cfc, not "
                       "in your model or your compiler", None,
                       "report this as a cfc bug, with the model and the compiler output "
                       "below; meanwhile '--backend python' runs the model" + quoted)
    raise CfcError(ErrorKind.ENVIRONMENT, f"{label} failed to build the kernels of '{name}' "
                   f"(exit status {out.returncode}), and it fails on a trivial file too",
                   None, advice + quoted)


__all__ = ["IGNORED_ENV", "LOG_TAIL", "compiler_env", "run_compiler"]
