"""The CUDA build target: nvcc compiles kernels.cu into a plain shared library.

cffi opens the library in ABI mode (`ffi.dlopen`): the generated host wrappers do all the
CUDA runtime work (see the convention in templates/kernels.cu.j2), so Python needs no
pycuda or cupy. Everything else (cache, metadata, logs, errors) is the shared pipeline's.
"""

from __future__ import annotations

import os
import shlex
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any

from cfc_dsl.codegen.targets import language
from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.model import Target
from cfc_dsl.runtime.build.cache import CacheEntry
from cfc_dsl.runtime.build.targets import BuildTarget
from cfc_dsl.runtime.build.toolchain import Toolchain

# sm_80 (A100) and sm_90 (H100/H200) machine code, plus sm_80 PTX that newer GPUs JIT.
# No FMA contraction: the kernels are memory-bound, and without it each term is computed
# with the same roundings as the C kernels.
DEFAULT_ARCH = ("-gencode=arch=compute_80,code=[sm_80,compute_80]",
                "-gencode=arch=compute_90,code=sm_90")
NVCC_FLAGS = ("-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC", "-fmad=false")
STRICT_FLAGS = ("-std=c++17", "-Werror", "all-warnings", "-Xcompiler", "-Wall,-Wextra,-Werror")

# The runtime helpers that every generated .cu defines (beside the per-energy wrappers).
RUNTIME_CDEF = """
int cfc_cuda_device_count(void);
const char *cfc_cuda_error_string(int code);
int cfc_cuda_device_name(char *out, int size);
int cfc_cuda_status(void);
int cfc_cuda_alloc(void **out, int64_t bytes);
int cfc_cuda_free(void *ptr);
int cfc_cuda_to_device(void *dst, const void *src, int64_t bytes);
int cfc_cuda_to_host(void *dst, const void *src, int64_t bytes);
int cfc_cuda_zero(void *dst, int64_t bytes);
"""

_NO_NVCC_HINT = ("install the CUDA toolkit (https://developer.nvidia.com/cuda-downloads), put "
                 "nvcc on PATH or set CFC_NVCC to its path, or use '--backend c'")


def find_nvcc() -> str | None:
    """$CFC_NVCC, else nvcc on PATH, else $CUDA_HOME/bin/nvcc or /usr/local/cuda/bin/nvcc."""
    if os.environ.get("CFC_NVCC"):
        return shutil.which(os.environ["CFC_NVCC"])
    found = shutil.which("nvcc")
    if found:
        return found
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home and os.access(Path(home, "bin", "nvcc"), os.X_OK):
            return str(Path(home, "bin", "nvcc"))
    return None


@lru_cache(maxsize=4)
def _nvcc_version(command: str) -> str:
    """nvcc's "release" line: its first line is the same for every version."""
    import subprocess  # here: only a CUDA build asks
    try:
        out = subprocess.run([*shlex.split(command), "--version"], capture_output=True,
                             text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    lines = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    release = [line for line in lines if "release" in line]
    return (release or lines or ["unknown"])[-1]


def arch_flags() -> tuple[str, ...]:
    """$CFC_CUDA_ARCH (e.g. 'sm_90' or '90') builds for that GPU alone, which is faster."""
    arch = os.environ.get("CFC_CUDA_ARCH", "").strip()
    if not arch:
        return DEFAULT_ARCH
    return (f"-arch={arch if arch.startswith('sm_') else 'sm_' + arch.replace('.', '')}",)


def toolchain() -> Toolchain:
    nvcc = find_nvcc()
    if nvcc is None:
        raise CfcError(ErrorKind.ENVIRONMENT, "the CUDA backend needs nvcc, which was not found "
                       "(looked at $CFC_NVCC, PATH, $CUDA_HOME and /usr/local/cuda)", None,
                       _NO_NVCC_HINT)
    command = shlex.join([nvcc])
    # the library is loaded in ABI mode, so it does not depend on the Python ABI
    return Toolchain(command, _nvcc_version(command), NVCC_FLAGS + arch_flags(), "none")


def _command(tc: Toolchain, source: str, library: str) -> list[str]:
    return [*tc.command, *tc.flags, source, "-o", library]


def _load_library(entry: CacheEntry) -> tuple[Any, Any]:
    import cffi  # only when a CUDA library is opened

    ffi = cffi.FFI()
    ffi.cdef((entry.path / str(entry.meta["cdef"])).read_text() + RUNTIME_CDEF)
    path = entry.path / str(entry.meta["library"])
    try:
        lib = ffi.dlopen(str(path))
    except OSError as exc:
        raise CfcError(ErrorKind.ENVIRONMENT, f"cannot load the CUDA kernels {path}: {exc}", None,
                       "clear the cache with 'cfc cache clear' and compile again") from None
    return ffi, lib


def _advice(tc: Toolchain) -> str:
    return "see the compiler output below; report it if the model is valid, or use '--backend c'"


def _error_text(ffi: Any, lib: Any, code: int) -> str:
    return f"{ffi.string(lib.cfc_cuda_error_string(code)).decode()} (CUDA error {code})"


def check_device(ffi: Any, lib: Any) -> None:
    """A CUDA device must be usable, or the backend is an environment error (exit 3)."""
    count = lib.cfc_cuda_device_count()
    if count > 0:
        return
    why = "CUDA found no device" if count == 0 else _error_text(ffi, lib, -count)
    if shutil.which("nvidia-smi") is None:
        why = f"no NVIDIA driver was found ('nvidia-smi' is not on PATH; CUDA says: {why})"
    raise CfcError(ErrorKind.ENVIRONMENT, f"the CUDA backend needs an NVIDIA GPU: {why}", None,
                   "run on a machine whose NVIDIA driver works ('nvidia-smi' lists the GPU), "
                   "or use '--backend c'")


CUDA_TARGET = BuildTarget(
    language=language(Target.CUDA), toolchain=toolchain, module_prefix="_cfc_cuda_",
    emit=None, library=lambda module: "kernels.so", command=_command,
    load=_load_library, compiler_label="nvcc", advice=_advice, ready=check_device,
)


__all__ = ["CUDA_TARGET", "RUNTIME_CDEF", "STRICT_FLAGS", "arch_flags", "check_device",
           "find_nvcc", "toolchain"]
