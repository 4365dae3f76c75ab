"""Build stage: model + target -> compiled kernel library, through the content-hash cache.

One pipeline serves every target; a `BuildTarget` (build/targets.py, build/cuda.py) says
how its compiler is found, run and its library opened. The compiler runs in a subprocess
in the staging folder, so a build changes no file descriptor, environment variable or
working directory of this process, and threads may build at once. On a cache hit nothing
but the checked model is needed: SymPy is imported only to render the source on a miss.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cffi

from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.model import Model, Target
from cfc_dsl.runtime.build import cache
from cfc_dsl.runtime.build.cuda import CUDA_TARGET
from cfc_dsl.runtime.build.targets import C_TARGET, BuildTarget
from cfc_dsl.runtime.build.toolchain import Toolchain, toolchain
from cfc_dsl.version import __version__

TARGETS: dict[Target, BuildTarget] = {Target.C: C_TARGET, Target.CUDA: CUDA_TARGET}


@dataclass(frozen=True)
class BuildInfo:
    digest: str
    cache_hit: bool
    seconds: float
    path: Path
    toolchain: Toolchain


@dataclass(frozen=True)
class CompiledKernels:
    """A loaded kernel library: `lib` has cfc_eg_<energy> and cfc_e_<energy> for each energy."""

    model: Model
    ffi: Any
    lib: Any
    info: BuildInfo


# Everything that turns a kernel spec into a module: the language (parse, check, derive,
# bounds), the code generator and its templates, and the build recipe itself (the wrapper's
# flags, the compile and link steps, for every target). The digest is taken over every
# source file of those packages, read as bytes, not imported: a cache hit stays free of
# SymPy, and any edit or upgrade there invalidates the entries it could change.
_GENERATOR_PACKAGES = ("cfc_dsl", "cfc_dsl.codegen", "cfc_dsl.templates", "cfc_dsl.runtime.build")
_GENERATOR_SUFFIXES = (".py", ".lark", ".cfc", ".j2")


@functools.lru_cache(maxsize=1)
def generator_digest() -> str:
    """SHA-256 over each generator package's files (name and bytes, by name). Each folder
    is the package's own, found by importing it (cfc is always installed unzipped, and
    every one of them is imported on a hit anyway): importlib.resources would give the same
    files for ~15 ms of imports and traversal on every run (issue 12: start-up). Read every
    time, not keyed by mtimes: the ~300 kB cost ~1.5 ms, and a stale digest would load old
    kernels for a changed generator."""
    digest = hashlib.sha256()
    for package in _GENERATOR_PACKAGES:
        origin = importlib.import_module(package).__file__
        if origin is None:  # a namespace package: not how cfc is installed
            raise RuntimeError(f"{package} has no folder of its own to digest")
        root = Path(origin).parent
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


def module_name(digest: str, target: Target = Target.C) -> str:
    return f"{TARGETS[target].module_prefix}{digest[:20]}"


def build(model: Model, target: Target = Target.C, require_device: bool = True) -> CompiledKernels:
    """Compile `model`'s kernels for `target` (or fetch them from the cache) and load them.

    `require_device=False` skips the target's check that the library can run here (for
    CUDA: that a GPU is present), so a machine without one can still build and cache."""
    start = time.perf_counter()
    spec = TARGETS[target]
    tc = spec.toolchain()
    key = cache_key(model, target, tc)

    def compile_into(staging: Path) -> dict[str, object]:
        return _compile(model, spec, tc, key, staging)

    entry = cache.lookup(key)
    hit = entry is not None
    if entry is None:
        entry, built = cache.publish(key, compile_into)
        hit = not built
    try:
        ffi, lib = _load(spec, entry)
    except CfcError as exc:
        if not hit:
            raise
        # an entry that passed its checks but does not load: quarantine it, build it once more
        entry, _ = cache.publish(key, compile_into, damaged=f"it does not load: {exc.message}")
        hit = False
        ffi, lib = _load(spec, entry)
    if require_device and spec.ready is not None:
        spec.ready(ffi, lib)
    info = BuildInfo(entry.digest, hit, time.perf_counter() - start, entry.path, tc)
    return CompiledKernels(model, ffi, lib, info)


def build_cuda(model: Model, require_device: bool = True) -> CompiledKernels:
    """`build(model, Target.CUDA)`: nvcc is needed, a GPU only when `require_device`."""
    return build(model, Target.CUDA, require_device)


def _compile(model: Model, spec: BuildTarget, tc: Toolchain, key: cache.CacheKey,
             staging: Path) -> dict[str, object]:
    """Render, write and compile into `staging`; returns the entry's metadata."""
    # the miss path's imports: a cache hit starts no thread and runs no process
    from concurrent.futures import ThreadPoolExecutor

    from cfc_dsl.codegen.bounds import model_summary
    from cfc_dsl.codegen.render import render_model
    from cfc_dsl.runtime.build.compiler import run_compiler
    from cfc_dsl.runtime.build.units import compile_units

    rendered = render_model(model, spec.target)
    module = module_name(key.digest(), spec.target)
    source = spec.language.source_file
    (staging / source).write_text(rendered.source)  # the one-file form, as --emit writes it
    (staging / "kernels.h").write_text(rendered.header)
    (staging / "kernels.cdef").write_text(rendered.cdef)
    library = spec.library(module)
    advice = spec.advice(tc)
    units = tuple(rendered.units) if spec.split and len(rendered.units) > 1 else ()

    def command(src: str) -> list[str]:  # src: the source, or the trivial file of a probe
        return spec.command(tc, src, library if src == source else "probe.so")

    # the compiler is a subprocess, so the target's Python side (cffi parsing the cdef) runs
    # in a thread meanwhile, on the other core
    with ThreadPoolExecutor(max_workers=1) as pool:
        emitted = pool.submit(spec.emit, rendered, module, staging) if spec.emit else None
        if units:  # the units at once, one per core, then the link (build/units.py)
            compile_units(model.name, spec.compiler_label, advice, tc, units, library,
                          staging, "build.log")
        else:
            run_compiler(model.name, spec.compiler_label, advice, command, source, staging,
                         "build.log")  # its error first; leaving `with` waits for the thread
        if emitted is not None:
            emitted.result()
    if not (staging / library).is_file():
        raise CfcError(ErrorKind.ENVIRONMENT, f"{spec.compiler_label} reported success but "
                       f"wrote no library for '{model.name}' (expected {library})", None,
                       spec.advice(tc))
    # the same keys for every target, written here and nowhere else
    return {"module": module, "model": model.name, "target": spec.target.value,
            "source": source, "units": [u.name for u in units],
            "header": "kernels.h", "cdef": "kernels.cdef",
            "library": library, "energies": [e.name for e in model.used_energies],
            "kernel_spec": model.kernel_spec(),
            "lipschitz": model_summary(model)}  # per energy, for runtime/lipschitz.py


_LOADED: dict[str, tuple[Any, Any]] = {}  # entry digest -> (ffi, lib): load each library once
_LOAD_LOCK = threading.Lock()


def _load(spec: BuildTarget, entry: cache.CacheEntry) -> tuple[Any, Any]:
    with _LOAD_LOCK:
        if entry.digest not in _LOADED:
            _LOADED[entry.digest] = spec.load(entry)
        return _LOADED[entry.digest]


def strict_compile_check(source: str) -> str:
    """Compile `source` with -Wall -Wextra -Werror; returns the compiler output ('' if clean)."""
    import subprocess
    import tempfile

    from cfc_dsl.runtime.build.compiler import compiler_env
    from cfc_dsl.runtime.build.toolchain import STRICT_FLAGS

    tc = toolchain()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "kernels.c").write_text(source)
        out = subprocess.run([*tc.command, *STRICT_FLAGS, "-c", "kernels.c", "-o", "kernels.o"],
                             cwd=tmp, capture_output=True, text=True, env=compiler_env())
        if out.returncode != 0:
            return out.stdout + out.stderr
    return ""


__all__ = ["TARGETS", "BuildInfo", "CompiledKernels", "build", "build_cuda", "cache_key",
           "generator_digest", "module_name", "strict_compile_check"]
