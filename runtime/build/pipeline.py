"""Build stage: model -> compiled kernel module, through cffi (API mode) and the cache.

On a cache hit nothing but the checked model is needed: SymPy is imported only to render
the source on a miss. A build failure or a missing compiler is an environment error.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import cffi

from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.model import Model, Target
from cfc_dsl.version import __version__
from cfc_dsl.runtime.build import cache
from cfc_dsl.runtime.build.toolchain import Toolchain, toolchain


@dataclass(frozen=True)
class BuildInfo:
    digest: str
    cache_hit: bool
    seconds: float
    path: Path
    toolchain: Toolchain


@dataclass(frozen=True)
class CompiledKernels:
    """A loaded kernel module: `lib` has cfc_eg_<energy> and cfc_e_<energy> for each energy."""

    model: Model
    ffi: Any
    lib: Any
    info: BuildInfo


# Everything that turns a kernel spec into source text: the language (parse, check,
# derive, bounds), the code generator and its templates. The digest is taken over every
# source file of those packages, read as bytes, not imported: a cache hit stays free of
# SymPy, and any edit or upgrade there invalidates the entries it could have changed.
_GENERATOR_PACKAGES = ("cfc_dsl", "cfc_dsl.codegen", "cfc_dsl.templates")
_GENERATOR_SUFFIXES = (".py", ".lark", ".cfc", ".j2")


@functools.lru_cache(maxsize=1)
def generator_digest() -> str:
    digest = hashlib.sha256()
    for package in _GENERATOR_PACKAGES:
        root = resources.files(package)
        for path in sorted(root.iterdir(), key=lambda p: p.name):
            if path.is_file() and path.name.endswith(_GENERATOR_SUFFIXES):
                digest.update(f"{package}/{path.name}\n".encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(model: Model, target: Target, tc: Toolchain) -> cache.CacheKey:
    return cache.CacheKey(
        source_digest=model.kernel_spec_digest(), generator=generator_digest(),
        target=target.value, compiler=tc.compiler,
        compiler_version=tc.version, flags=tc.flags, cfc_version=__version__,
        schema=cache.CACHE_SCHEMA, cffi_version=cffi.__version__, python_abi=tc.python_abi,
    )


def module_name(digest: str) -> str:
    return f"_cfc_{digest[:20]}"


def build(model: Model, target: Target = Target.C) -> CompiledKernels:
    """Compile `model`'s kernels (or fetch them from the cache) and load the module."""
    if target is not Target.C:
        raise CfcError(ErrorKind.ARGUMENT, f"target '{target.value}' cannot be loaded on this "
                       "host", None, "use 'cfc compile --target cuda' to generate CUDA source; "
                       "running it needs the CUDA backend")
    start = time.perf_counter()
    tc = toolchain()
    key = cache_key(model, target, tc)
    entry = cache.lookup(key)
    hit = entry is not None
    if entry is None:
        entry, built = cache.publish(key, lambda staging: _compile(model, tc, key, staging))
        hit = not built
    try:
        ffi_module = _load(entry)
    except CfcError:
        if not hit:
            raise
        # a damaged entry (a truncated or deleted module): build it again, once
        cache.evict(entry)
        entry, _ = cache.publish(key, lambda staging: _compile(model, tc, key, staging))
        hit = False
        ffi_module = _load(entry)
    info = BuildInfo(entry.digest, hit, time.perf_counter() - start, entry.path, tc)
    return CompiledKernels(model, ffi_module.ffi, ffi_module.lib, info)


def _compile(model: Model, tc: Toolchain, key: cache.CacheKey, staging: Path) -> dict[str, object]:
    from cfc_dsl.codegen.bounds import model_summary
    from cfc_dsl.codegen.render import render_model

    rendered = render_model(model, Target.C)
    name = module_name(key.digest())
    (staging / "kernels.c").write_text(rendered.source)
    (staging / "kernels.h").write_text(rendered.header)
    (staging / "kernels.cdef").write_text(rendered.cdef)
    ffi = cffi.FFI()
    ffi.cdef(rendered.cdef)
    ffi.set_source(name, rendered.source, extra_compile_args=list(tc.flags))
    log_path = staging / "build.log"
    with _quiet(log_path), _compiler_env(tc):
        try:
            so_path = ffi.compile(tmpdir=str(staging / "build"), verbose=False)
        except Exception as exc:  # distutils raises several unrelated types
            log = log_path.read_text(errors="replace") if log_path.exists() else ""
            raise CfcError(ErrorKind.ENVIRONMENT,
                           f"the C compiler failed to build the kernels of '{model.name}': {exc}",
                           None, f"check that the compiler works ({_compiler_hint(tc)}), or run "
                           "with '--backend python'; if it does, report this with the compiler "
                           "output below" + ("\n" + log[-4000:] if log else "")) from None
    if not Path(so_path).is_file():
        raise CfcError(ErrorKind.ENVIRONMENT, f"the C compiler reported success but wrote no "
                       f"module for '{model.name}' (expected {Path(so_path).name})", None,
                       f"check that the compiler works ({_compiler_hint(tc)}), or run with "
                       "'--backend python'")
    final = staging / Path(so_path).name
    os.replace(so_path, final)
    return {"module": name, "model": model.name, "library": final.name,
            "energies": [e.name for e in model.used_energies], "kernel_spec": model.kernel_spec(),
            "lipschitz": model_summary(model)}  # per energy, for runtime/lipschitz_global.py


def _compiler_hint(tc: Toolchain) -> str:
    from cfc_dsl.runtime.build.toolchain import compiler_name

    if compiler_name() != "cc":
        return f"CC={compiler_name()!r}"
    return f"the default 'cc', {tc.compiler}; set CC to choose another"


@contextlib.contextmanager
def _compiler_env(tc: Toolchain):  # type: ignore[no-untyped-def]
    old = os.environ.get("CC")
    os.environ["CC"] = tc.compiler
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("CC", None)
        else:
            os.environ["CC"] = old


@contextlib.contextmanager
def _quiet(log_path: Path):  # type: ignore[no-untyped-def]
    """Send the compiler's chatter (written to fds 1 and 2) to a log file."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


_LOADED: dict[str, ModuleType] = {}


def _load(entry: cache.CacheEntry) -> ModuleType:
    name = entry.module_name
    if name in _LOADED:
        return _LOADED[name]
    path = entry.path / str(entry.meta["library"])
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CfcError(ErrorKind.ENVIRONMENT, f"cannot load the compiled module {path}", None,
                       "clear the cache with 'cfc cache clear' and compile again")
    try:
        module = importlib.util.module_from_spec(spec)  # an extension module is loaded here
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise CfcError(ErrorKind.ENVIRONMENT, f"cannot load the compiled module {path}: {exc}",
                       None, "clear the cache with 'cfc cache clear' and compile again") from None
    _LOADED[name] = module
    return module


def strict_compile_check(source: str) -> str:
    """Compile `source` with -Wall -Wextra -Werror; returns the compiler output ('' if clean)."""
    import subprocess

    from cfc_dsl.runtime.build.toolchain import STRICT_FLAGS

    tc = toolchain()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kernels.c"
        path.write_text(source)
        out = subprocess.run([tc.compiler, *STRICT_FLAGS, "-c", str(path), "-o",
                              str(Path(tmp) / "k.o")], capture_output=True, text=True)
        if out.returncode != 0:
            return out.stdout + out.stderr
    return ""
