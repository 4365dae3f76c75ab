"""Build targets: what one target adds to the shared build pipeline, as one frozen value.

A `BuildTarget` says how to find the compiler, what to write for it, the command that
turns that into a library, and how to open the library. The C target is here: cffi writes
an extension module's C source (API mode), the C compiler builds it, importlib loads it.
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
from cffi import recompiler

from cfc_dsl.codegen.targets import Language, language
from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.model import Target
from cfc_dsl.runtime.build.cache import CacheEntry
from cfc_dsl.runtime.build.toolchain import STRICT_FLAGS, Toolchain, compiler_hint, toolchain

if TYPE_CHECKING:  # the type alone: importing render imports SymPy, which a hit must not
    from cfc_dsl.codegen.render import RenderedSource


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
    # (tc, source) -> argv that checks the generated source alone with -Werror, or None
    strict: Callable[[Toolchain, str], list[str]] | None = None

    @property
    def target(self) -> Target:
        return self.language.target


def _emit_extension(rendered: RenderedSource, module: str, staging: Path) -> str:
    """cffi (API mode) writes the extension module's C source; it compiles nothing."""
    ffi = cffi.FFI()
    ffi.cdef(rendered.cdef)
    name = f"{module}.c"
    # what ffi.set_source + ffi.emit_c_code do, less the "generating ..." line they print
    # to stdout, which is not ours to write on (another thread may own it)
    recompiler.recompile(ffi, module, rendered.source, c_file=str(staging / name),
                         call_c_compiler=False, uses_ffiplatform=False, compiler_verbose=False)
    return name


def _extension_file(module: str) -> str:
    return module + str(sysconfig.get_config_var("EXT_SUFFIX") or ".so")


def _extension_command(tc: Toolchain, source: str, library: str) -> list[str]:
    include = sysconfig.get_paths()["include"]
    return [*tc.command, *tc.flags, "-I", include, source, "-o", library, "-lm"]


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


def _strict_command(tc: Toolchain, source: str) -> list[str]:
    """-Werror on the kernels alone: cffi's wrapper around them may warn, they may not."""
    return [*tc.command, *STRICT_FLAGS, "-fsyntax-only", source]


def _c_advice(tc: Toolchain) -> str:
    return (f"check that the compiler works ({compiler_hint(tc)}), or run with "
            "'--backend python'; if it does, report this with the compiler output below")


C_TARGET = BuildTarget(
    language=language(Target.C), toolchain=toolchain, module_prefix="_cfc_",
    emit=_emit_extension, library=_extension_file, command=_extension_command,
    load=_load_extension, compiler_label="the C compiler", advice=_c_advice,
    strict=_strict_command,
)


__all__ = ["C_TARGET", "BuildTarget"]
