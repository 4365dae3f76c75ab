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
import threading
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


def loop_library(name: str, source: str, cdef: str, extra: tuple[str, ...] = ()
                 ) -> tuple[Any, Any] | None:
    """(ffi, lib) of the C loop `name` built from `source` (with the `extra` compiler
    flags), or None (the Python loop then serves). Built at most once per process and
    compiler."""
    if disabled():
        return None
    return _load(name, source, cdef, cache_dir(), extra)


@cache
def _load(name: str, source: str, cdef: str, folder: Path, extra: tuple[str, ...] = ()
          ) -> tuple[Any, Any] | None:
    try:
        tc = toolchain()
    except CfcError:
        return None
    flags = (*C_FLAGS, *extra, *SHARED_FLAGS)
    digest = hashlib.sha256("\n".join((tc.compiler, tc.version, *flags, source)).encode()
                            ).hexdigest()[:16]
    path = folder / f"loop-{name}-{digest}.so"
    try:
        if not path.exists():
            _build(name, source, tc, flags, folder, path)
        if writable_by_others(folder) is not None or not private(path, is_dir=False):
            return None  # never load code that someone else could have written
        ffi = _ffi(cdef, folder, f"loop-{name}-{digest}")
        return ffi, ffi.dlopen(str(path))
    except (OSError, CfcError, ImportError):
        return None


def _ffi(cdef: str, folder: Path, stem: str) -> Any:
    """The loop's FFI from cffi's out-of-line ABI module beside the library, read as
    literals (targets.abi_arguments: never run) once its sha256 matches the one written
    with it: parsing the cdef imports pycparser (0.1-0.3 s of a run whose loop is built,
    tests/test_c_cg.py). Missing, damaged or foreign: parsed once more and written again."""
    import _cffi_backend

    from cfc_dsl.runtime.build.targets import abi_arguments

    key = hashlib.sha256(f"{_cffi_backend.__version__}\n{cdef}".encode()).hexdigest()[:16]
    module, digest = folder / f"{stem}-abi-{key}.py", folder / f"{stem}-abi-{key}.sha256"
    try:
        text = module.read_text(encoding="utf-8")
        if private(module, is_dir=False) and private(digest, is_dir=False) and \
                digest.read_text().strip() == hashlib.sha256(text.encode()).hexdigest():
            args, kwargs = abi_arguments(text)
            return _cffi_backend.FFI(*args, **kwargs)
    except (OSError, ValueError, SyntaxError):
        pass
    import cffi  # parses the cdef (pycparser), then keeps its ABI module for the next run
    from cffi import recompiler

    ffi = cffi.FFI()
    ffi.cdef(cdef)
    # staged per process and thread; 0644 whatever the umask, or `private` refuses them on
    # the next run (umask 002 made them 0664) and every run would parse the cdef again
    tag = f"{os.getpid()}.{threading.get_ident()}"
    staged = module.with_name(f".{module.name}.{tag}")
    staged_digest = digest.with_name(f".{digest.name}.{tag}")
    try:
        recompiler.recompile(ffi, module.stem, None, c_file=str(staged), call_c_compiler=False,
                             uses_ffiplatform=False, compiler_verbose=False)
        text = staged.read_text(encoding="utf-8")
        staged_digest.write_text(hashlib.sha256(text.encode()).hexdigest() + "\n")
        for path in (staged, staged_digest):
            os.chmod(path, 0o644)
        os.replace(staged, module)
        os.replace(staged_digest, digest)
    except OSError:  # a full or read-only folder: parse again next time
        for path in (staged, staged_digest):
            path.unlink(missing_ok=True)
    return ffi


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
