"""Build targets: what one target adds to the shared build pipeline, as one frozen value.

A `BuildTarget` says how to find the compiler, what to write for it, the command that
turns that into a library, and how to open the library. The C target is here: the compiler
builds kernels.c into a plain shared library (-O1, and -Wall -Wextra -Werror: that
compile is also the check that the generated source is warning-free; a larger model's
translation units are compiled at once and linked, build/units.py), and cffi opens it in
out-of-line ABI mode: the entry holds cffi's small Python module of the parsed
declarations (written from kernels.cdef, no C), and `ffi.dlopen` opens the library.

This replaced API mode, whose C wrapper (argument-conversion glue for every entry point)
was compiled beside the kernels on every miss: ~12 ms of gcc CPU per entry point, 0.6 s
for sequence_redemption (49 entry points; the kernels take 0.5-0.9 s), 10.5 s for 100
energies (800). A call through ABI mode goes through libffi and costs 0.2-0.7 us more
(bench/cffi_modes.py); the backend makes one call per evaluation (cfc_eg_all). The module
is never run: only the literal arguments of its FFI(...) call are read. The CUDA target (`build/cuda.py`) differs only
in these fields, as tinygrad's languages do.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cfc_dsl.codegen.targets import Language, language
from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.model import Target
from cfc_dsl.runtime.build import heal
from cfc_dsl.runtime.build.cache import CacheEntry
from cfc_dsl.runtime.build.toolchain import WARNING_FLAGS, Toolchain, compiler_hint, toolchain

if TYPE_CHECKING:  # the type alone: importing render imports SymPy, which a hit must not
    from cfc_dsl.codegen.render import RenderedSource


@dataclass(frozen=True)
class BuildTarget:
    """The fields by which one target's build differs from another's."""

    language: Language  # kernel template and source file name (the codegen side)
    toolchain: Callable[[], Toolchain]  # finds the compiler, or raises CfcError (exit 3)
    module_prefix: str  # a module is named prefix + the first 20 hex digits of its key
    # (rendered, module, staging): writes what the loader needs beside the library; it runs
    # while the compiler builds the language's source file, which the pipeline has written
    emit: Callable[[RenderedSource, str, Path], None] | None
    library: Callable[[str], str]  # module name -> the library's file name
    command: Callable[[Toolchain, str, str], list[str]]  # (tc, input, library) -> argv
    load: Callable[[CacheEntry], tuple[Any, Any]]  # an entry -> (ffi, lib)
    compiler_label: str  # names the compiler in messages
    advice: Callable[[Toolchain], str]  # the hint when the compiler fails
    ready: Callable[[Any, Any], None] | None = None  # (ffi, lib): can it run here? (CUDA: a GPU)
    # the render's units are compiled at once and linked (build/units.py); else the one file
    split: bool = False

    @property
    def target(self) -> Target:
        return self.language.target


ABI_SUFFIX = heal.ABI_SUFFIX  # cffi's out-of-line ABI module, beside the library in the entry


def _emit_abi_module(rendered: RenderedSource, module: str, staging: Path) -> None:
    """cffi writes the out-of-line ABI module `module`.py from the cdef (pycparser parses
    it: 0.15-0.3 s for sequence_redemption, hidden behind the compiler, which runs meanwhile)."""
    import cffi  # the miss path only
    from cffi import recompiler

    ffi = cffi.FFI()
    ffi.cdef(rendered.cdef)
    # what ffi.set_source(module, None) + ffi.emit_python_code do, less the "generating ..."
    # line they print to stdout, which is not ours to write on (another thread may own it)
    recompiler.recompile(ffi, module, None, c_file=str(staging / (module + ABI_SUFFIX)),
                         call_c_compiler=False, uses_ffiplatform=False, compiler_verbose=False)


def _library_file(module: str) -> str:
    return module + ".so"


def _command(tc: Toolchain, source: str, library: str) -> list[str]:
    return [*tc.command, *tc.flags, *WARNING_FLAGS, source, "-o", library, "-lm"]


def abi_arguments(text: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments of the one `_cffi_backend.FFI(...)` call in cffi's out-of-line ABI module,
    read as literals. The module is never run: cffi writes nothing but `import _cffi_backend`
    and `ffi = _cffi_backend.FFI(<literals>)`, so anything else in the file is damage (or
    someone else's code), and a ValueError."""
    tree = ast.parse(text)
    if len(tree.body) != 2:
        raise ValueError("not the two statements cffi writes")
    imp, assign = tree.body
    if not (isinstance(imp, ast.Import) and [a.name for a in imp.names] == ["_cffi_backend"]
            and all(a.asname is None for a in imp.names)):
        raise ValueError("the first statement is not 'import _cffi_backend'")
    if not (isinstance(assign, ast.Assign) and len(assign.targets) == 1
            and isinstance(assign.targets[0], ast.Name) and assign.targets[0].id == "ffi"):
        raise ValueError("the second statement is not 'ffi = ...'")
    call = assign.value
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and call.func.attr == "FFI" and isinstance(call.func.value, ast.Name)
            and call.func.value.id == "_cffi_backend"):
        raise ValueError("'ffi' is not made by _cffi_backend.FFI(...)")
    args = tuple(ast.literal_eval(arg) for arg in call.args)
    kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
    if len(kwargs) != len(call.keywords):
        raise ValueError("a ** argument")
    return args, kwargs


def _load_abi(entry: CacheEntry) -> tuple[Any, Any]:
    """(ffi, lib): the ABI module's FFI rebuilt from its literal arguments (`abi_arguments`;
    the file is never executed, and heal.damage has checked its sha256), then the library
    opened through it."""
    library = entry.path / str(entry.meta["library"])
    module = entry.path / (entry.module_name + ABI_SUFFIX)
    try:
        import _cffi_backend

        args, kwargs = abi_arguments(module.read_text(encoding="utf-8"))
        ffi = _cffi_backend.FFI(*args, **kwargs)
        return ffi, ffi.dlopen(str(library))
    except Exception as exc:  # a damaged entry may fail in any way: it is rebuilt
        raise CfcError(ErrorKind.ENVIRONMENT, f"cannot load the compiled kernels {library}: "
                       f"{type(exc).__name__}: {exc}", None,
                       "clear the cache with 'cfc cache clear' and compile again") from None


def _c_advice(tc: Toolchain) -> str:
    return (f"check that the compiler works ({compiler_hint(tc)}), or run with "
            "'--backend python'; if it does, report this with the compiler output below")


C_TARGET = BuildTarget(
    language=language(Target.C), toolchain=toolchain, module_prefix="_cfc_",
    emit=_emit_abi_module, library=_library_file, command=_command, load=_load_abi,
    compiler_label="the C compiler", advice=_c_advice, split=True,
)


__all__ = ["ABI_SUFFIX", "C_TARGET", "BuildTarget"]
