"""Build targets: what one target adds to the shared build pipeline, as one frozen value.

A `BuildTarget` says how to find the compiler, what to write for it, the commands that
turn that into a library, and how to open the library. The C target is here: cffi writes
an extension module's wrapper (API mode) around kernels.h; the kernels (-O1, and
-Wall -Wextra -Werror: that compile is also the check that the generated source is
warning-free) and the wrapper (-O0: glue only) compile as two objects at once, then link;
importlib loads it.
The CUDA target (`build/cuda.py`) differs only in these fields, as tinygrad's languages do.
"""

from __future__ import annotations

import importlib.util
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cffi

from cfc_dsl.codegen.targets import Language, language
from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.model import Target
from cfc_dsl.runtime.build.cache import CacheEntry
from cfc_dsl.runtime.build.toolchain import WARNING_FLAGS, Toolchain, compiler_hint, toolchain

if TYPE_CHECKING:  # the type alone: importing render imports SymPy, which a hit must not
    from cfc_dsl.codegen.render import RenderedSource


@dataclass(frozen=True)
class Step:
    """One compiler run of a staged build: its input file and its argv for an input (the
    input itself, or the trivial file of a failure probe)."""

    source: str
    command: Callable[[str], list[str]]


@dataclass(frozen=True)
class BuildTarget:
    """The fields by which one target's build differs from another's."""

    language: Language  # kernel template and source file name (the codegen side)
    toolchain: Callable[[], Toolchain]  # finds the compiler, or raises CfcError (exit 3)
    module_prefix: str  # a module is named prefix + the first 20 hex digits of its key
    emit: Callable[[RenderedSource, str, Path], str]  # (rendered, module, staging) -> input
    library: Callable[[str], str]  # module name -> the library's file name
    command: Callable[[Toolchain, str, str], list[str]]  # (tc, input, library) -> argv
    load: Callable[[CacheEntry], tuple[Any, Any]]  # an entry -> (ffi, lib)
    compiler_label: str  # names the compiler in messages
    advice: Callable[[Toolchain], str]  # the hint when the compiler fails
    ready: Callable[[Any, Any], None] | None = None  # (ffi, lib): can it run here? (CUDA: a GPU)
    # (tc, input, library) -> stages of steps (each stage's steps run at once) that replace
    # the single `command`; None: `command` alone builds the library
    stages: Callable[[Toolchain, str, str], tuple[tuple[Step, ...], ...]] | None = None

    @property
    def target(self) -> Target:
        return self.language.target


def _emit_extension(rendered: RenderedSource, module: str, staging: Path) -> str:
    """cffi (API mode) writes the extension module's wrapper around kernels.h (the kernels
    compile on their own, kernels.c); it compiles nothing."""
    from cffi import recompiler  # the miss path only: a cache hit imports the built module

    ffi = cffi.FFI()
    ffi.cdef(rendered.cdef)
    name = f"{module}.c"
    # what ffi.set_source + ffi.emit_c_code do, less the "generating ..." line they print
    # to stdout, which is not ours to write on (another thread may own it)
    recompiler.recompile(ffi, module, '#include "kernels.h"\n', c_file=str(staging / name),
                         call_c_compiler=False, uses_ffiplatform=False, compiler_verbose=False)
    return name


def _extension_file(module: str) -> str:
    return module + str(sysconfig.get_config_var("EXT_SUFFIX") or ".so")


def _extension_command(tc: Toolchain, source: str, library: str) -> list[str]:
    include = sysconfig.get_paths()["include"]
    return [*tc.command, *tc.flags, "-I", include, source, "-o", library, "-lm"]


# The cffi wrapper is argument-conversion glue around calls into the kernels: on the
# development machine -O0 compiled it in 0.6 s (-O1 1.4 s, -O2 2.2 s, -O3 with the kernels
# in one unit 4.8 s CPU) and a call through it cost the same within noise (874, 847, 820 ns).
WRAPPER_FLAGS = ("-O0", "-std=c99", "-g0", "-fPIC")


def _object_flags(tc: Toolchain) -> list[str]:
    """The toolchain's flags less those that only linking reads."""
    link_only = {"-shared", "-undefined", "dynamic_lookup"}
    return [f for f in tc.flags if f not in link_only]


def _extension_stages(tc: Toolchain, wrapper: str, library: str) -> tuple[tuple[Step, ...], ...]:
    """kernels.c (the toolchain's flags and WARNING_FLAGS) and the wrapper (WRAPPER_FLAGS)
    as two objects at once, then one link into the extension module. The warnings are
    checked on the kernels alone: cffi's wrapper around them may warn, they may not. (They
    were checked by a -fsyntax-only run of their own before: one compiler run less now.)"""
    include = sysconfig.get_paths()["include"]

    def obj(src: str) -> str:
        return Path(src).stem + ".o"

    kernels = Step("kernels.c", lambda src: [*tc.command, *_object_flags(tc), *WARNING_FLAGS,
                                             "-c", src, "-o", obj(src)])
    glue = Step(wrapper, lambda src: [*tc.command, *WRAPPER_FLAGS, "-I", include, "-I", ".",
                                      "-c", src, "-o", obj(src)])
    objects = [obj("kernels.c"), obj(wrapper)]

    def link(src: str) -> list[str]:  # src: probe.c when a failure is probed
        inputs = objects if src == wrapper else [src]
        out = library if src == wrapper else "probe.so"
        return [*tc.command, *tc.flags, *inputs, "-o", out, "-lm"]

    return (kernels, glue), (Step(wrapper, link),)


def _load_extension(entry: CacheEntry) -> tuple[Any, Any]:
    path = entry.path / str(entry.meta["library"])
    hint = "clear the cache with 'cfc cache clear' and compile again"
    spec = importlib.util.spec_from_file_location(entry.module_name, path)
    if spec is None or spec.loader is None:
        raise CfcError(ErrorKind.ENVIRONMENT, f"cannot load the compiled module {path}", None, hint)
    try:
        module = importlib.util.module_from_spec(spec)  # an extension module is loaded here
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise CfcError(ErrorKind.ENVIRONMENT, f"cannot load the compiled module {path}: {exc}",
                       None, hint) from None
    return module.ffi, module.lib


def _c_advice(tc: Toolchain) -> str:
    return (f"check that the compiler works ({compiler_hint(tc)}), or run with "
            "'--backend python'; if it does, report this with the compiler output below")


C_TARGET = BuildTarget(
    language=language(Target.C), toolchain=toolchain, module_prefix="_cfc_",
    emit=_emit_extension, library=_extension_file, command=_extension_command,
    load=_load_extension, compiler_label="the C compiler", advice=_c_advice,
    stages=_extension_stages,
)


__all__ = ["C_TARGET", "WRAPPER_FLAGS", "BuildTarget", "Step"]
