"""Hand-written C loops the solvers run around the generated kernels (`solvers/cloop.py`):
a fixed source, built once per compiler and kept in cfc's cache folder, loaded by path.

The source is not generated: it calls the kernels only through a function pointer the
solver hands it (`cfc_eg_all` of the model's own library), so one build serves every model.
The library is named by a hash of the compiler, its version, the flags and the source; it
is built in a private staging folder and moved into place, and loaded only when it is this
user's and writable by no one else (`cfc_dsl.cachedir`). Anything that goes wrong (no
compiler, a failed build, a folder others can write, `CFC_C_LOOPS=0`) returns None, and
the solver runs its Python loop instead: the same algorithm, only slower at small N.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path
from typing import Any

from cfc_dsl.cachedir import private, writable_by_others
from cfc_dsl.diagnostics import CfcError
from cfc_dsl.runtime.build.cache import cache_dir
from cfc_dsl.runtime.build.toolchain import C_FLAGS, SHARED_FLAGS, compiler_hint, toolchain

LINK_FLAGS = ("-lm",)


def disabled() -> bool:
    return os.environ.get("CFC_C_LOOPS", "").strip().lower() in ("0", "off", "no", "false")


def loop_library(name: str, source: str, cdef: str) -> tuple[Any, Any] | None:
    """(ffi, lib) of the C loop `name` built from `source`, or None (the Python loop then
    serves). Built at most once per process and compiler."""
    if disabled():
        return None
    return _load(name, source, cdef, cache_dir())


@cache
def _load(name: str, source: str, cdef: str, folder: Path) -> tuple[Any, Any] | None:
    try:
        tc = toolchain()
    except CfcError:
        return None
    flags = (*C_FLAGS, *SHARED_FLAGS)
    digest = hashlib.sha256("\n".join((tc.compiler, tc.version, *flags, source)).encode()
                            ).hexdigest()[:16]
    path = folder / f"loop-{name}-{digest}.so"
    try:
        if not path.exists():
            _build(name, source, tc, flags, folder, path)
        if writable_by_others(folder) is not None or not private(path, is_dir=False):
            return None  # never load code that someone else could have written
        import cffi

        ffi = cffi.FFI()
        ffi.cdef(cdef)
        return ffi, ffi.dlopen(str(path))
    except (OSError, CfcError, ImportError):
        return None


def _build(name: str, source: str, tc: Any, flags: tuple[str, ...], folder: Path,
           path: Path) -> None:
    # here, not at the top: a run whose library is built imports none of them (the
    # cache-hit rule of runtime/build, tests/test_startup.py)
    import shutil
    import tempfile

    from cfc_dsl.runtime.build.compiler import run_compiler

    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".loop-{name}-", dir=folder))  # mode 0700
    try:
        (staging / "loop.c").write_text(source)
        run_compiler(name, "the C compiler", compiler_hint(tc),
                     lambda src: [*tc.command, *flags, src, "-o", "loop.so", *LINK_FLAGS],
                     "loop.c", staging, "build.log")
        built = staging / "loop.so"
        os.chmod(built, 0o755)
        os.replace(built, path)  # atomic: a concurrent build of the same source is alike
    finally:
        shutil.rmtree(staging, ignore_errors=True)


__all__ = ["disabled", "loop_library"]
