"""Build and backend for the CUDA target: model -> .cu -> shared library -> `CudaBackend`.

nvcc compiles the rendered `kernels.cu` into a plain shared library in the kernel cache,
and cffi opens it in ABI mode (`ffi.dlopen`): the generated host wrappers do all the CUDA
runtime work (see the convention in templates/kernels.cu.j2), so Python needs no pycuda or
cupy. The instance tables go to the device once, when a bound model gets its backend.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
import weakref
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import cffi
import numpy as np

from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.model import Model, Target
from cfc_dsl.version import __version__
from runtime import cache
from runtime.backends import BackendKind, total
from runtime.bind import BoundModel
from runtime.build import BuildInfo, CompiledKernels
from runtime.toolchain import Toolchain

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
def _nvcc_version(path: str) -> str:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
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
    # the library is loaded in ABI mode, so it does not depend on the Python ABI
    return Toolchain(nvcc, _nvcc_version(nvcc), NVCC_FLAGS + arch_flags(), "none")


def _template_digest() -> str:
    """Template edits change the .cu without changing the model, so they are in the key."""
    folder = resources.files("codegen.templates")
    text = "".join(folder.joinpath(n).read_text("utf-8") for n in ("kernels.cu.j2", "helpers.c.j2"))
    return hashlib.sha256(text.encode()).hexdigest()


def cache_key(model: Model, tc: Toolchain) -> cache.CacheKey:
    from runtime.build import generator_digest

    source = hashlib.sha256((model.kernel_spec_digest() + _template_digest()).encode()).hexdigest()
    return cache.CacheKey(
        source_digest=source, generator=generator_digest(), target=Target.CUDA.value, compiler=tc.compiler,
        compiler_version=tc.version, flags=tc.flags, cfc_version=__version__,
        schema=cache.CACHE_SCHEMA, cffi_version=cffi.__version__, python_abi=tc.python_abi,
    )


def build_cuda(model: Model, require_device: bool = True) -> CompiledKernels:
    """Compile `model`'s CUDA kernels (or fetch them from the cache) and open the library."""
    start = time.perf_counter()
    tc = toolchain()
    key = cache_key(model, tc)
    entry = cache.lookup(key)
    hit = entry is not None
    if entry is None:
        entry, built = cache.publish(key, lambda staging: _compile(model, tc, key, staging))
        hit = not built
    ffi, lib = _load(entry)
    if require_device:
        check_device(ffi, lib)
    info = BuildInfo(entry.digest, hit, time.perf_counter() - start, entry.path, tc)
    return CompiledKernels(model, ffi, lib, info)


def _compile(model: Model, tc: Toolchain, key: cache.CacheKey, staging: Path) -> dict[str, object]:
    from codegen.render import render_model

    rendered = render_model(model, Target.CUDA)
    (staging / "kernels.cu").write_text(rendered.source)
    (staging / "kernels.h").write_text(rendered.header)
    (staging / "kernels.cdef").write_text(rendered.cdef)
    command = [tc.compiler, *tc.flags, "kernels.cu", "-o", "kernels.so"]
    out = subprocess.run(command, cwd=staging, capture_output=True, text=True)
    (staging / "build.log").write_text(" ".join(command) + "\n" + out.stdout + out.stderr)
    if out.returncode != 0:
        raise CfcError(ErrorKind.ENVIRONMENT,
                       f"nvcc failed to build the CUDA kernels of '{model.name}'", None,
                       "see the compiler output below; report it if the model is valid\n"
                       + (out.stdout + out.stderr)[-4000:])
    return {"module": f"_cfc_cuda_{key.digest()[:20]}", "model": model.name,
            "library": "kernels.so", "cdef": "kernels.cdef",
            "energies": [e.name for e in model.used_energies], "kernel_spec": model.kernel_spec()}


_LOADED: dict[str, tuple[Any, Any]] = {}


def _load(entry: cache.CacheEntry) -> tuple[Any, Any]:
    if entry.digest in _LOADED:
        return _LOADED[entry.digest]
    ffi = cffi.FFI()
    ffi.cdef((entry.path / str(entry.meta["cdef"])).read_text() + RUNTIME_CDEF)
    path = entry.path / str(entry.meta["library"])
    try:
        lib = ffi.dlopen(str(path))
    except OSError as exc:
        raise CfcError(ErrorKind.ENVIRONMENT, f"cannot load the CUDA kernels {path}: {exc}", None,
                       "clear the cache with 'cfc cache clear' and compile again") from None
    _LOADED[entry.digest] = (ffi, lib)
    return ffi, lib


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


def _free_all(lib: Any, pointers: list[Any]) -> None:
    while pointers:
        lib.cfc_cuda_free(pointers.pop())


class CudaBackend:
    """The Backend protocol on the GPU: the same calls and results as `CBackend`.

    Index and parameter arrays are copied to the device once, here; each evaluation copies
    x in (and the gradient out) and runs one kernel per family.
    """

    kind = BackendKind.CUDA

    def __init__(self, bound: BoundModel, ffi: Any, lib: Any):
        check_device(ffi, lib)
        self.bound, self.ffi, self.lib = bound, ffi, lib
        self._pointers: list[Any] = []  # every device allocation, freed with the backend
        self._finalizer = weakref.finalize(self, _free_all, lib, self._pointers)
        self._finalizer.atexit = False  # at exit the driver frees it, and may be gone already
        self._bytes = 8 * bound.n
        self._x = self._alloc(self._bytes, "double *")
        self._g = self._alloc(self._bytes, "double *")
        self._calls: list[tuple[Any, Any, list[Any], float]] = []
        for table in bound.families:
            args: list[Any] = [table.size]
            args += [self._upload(np.ascontiguousarray(a, np.int64), "int64_t *") for a in table.slots]
            args += [self._upload(np.ascontiguousarray(a, np.float64), "double *")
                     for a in table.params]
            self._calls.append((getattr(lib, f"cfc_eg_{table.energy}"),
                                getattr(lib, f"cfc_e_{table.energy}"), args, table.weight))

    def close(self) -> None:
        """Free the device memory now (otherwise it goes when the backend is collected)."""
        self._finalizer()

    def _check(self, code: int, what: str) -> None:
        if code != 0:
            raise CfcError(ErrorKind.ENVIRONMENT, f"CUDA failed to {what}: "
                           f"{_error_text(self.ffi, self.lib, code)}", None,
                           "check 'nvidia-smi' for the GPU's state and free memory")

    def _alloc(self, nbytes: int, ctype: str) -> Any:
        if nbytes == 0:
            return self.ffi.NULL
        out = self.ffi.new("void **")
        self._check(self.lib.cfc_cuda_alloc(out, nbytes), f"allocate {nbytes} bytes on the GPU")
        self._pointers.append(out[0])
        return self.ffi.cast(ctype, out[0])

    def _upload(self, array: np.ndarray, ctype: str) -> Any:
        ptr = self._alloc(array.nbytes, ctype)
        if array.nbytes:
            src = self.ffi.cast("void *", array.ctypes.data)
            self._check(self.lib.cfc_cuda_to_device(ptr, src, array.nbytes), "copy to the GPU")
        return ptr

    def _put_x(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.shape != (self.bound.n,):
            raise ValueError(f"expected a flat vector of {self.bound.n} values, got {x.shape}")
        if self._bytes:
            src = self.ffi.cast("void *", x.ctypes.data)
            self._check(self.lib.cfc_cuda_to_device(self._x, src, self._bytes), "copy x to the GPU")
        return x

    def _kernel_status(self) -> None:
        self._check(self.lib.cfc_cuda_status(), "run a kernel")

    def energy(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        self._put_x(x)
        fam = np.array([w * e(*args, self._x) for _, e, args, w in self._calls])
        self._kernel_status()
        return total(fam), fam

    def energy_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        x = self._put_x(x)
        grad = np.zeros_like(x)
        if self._bytes:
            self._check(self.lib.cfc_cuda_zero(self._g, self._bytes), "clear the gradient")
        fam = np.array([w * eg(*args, w, self._x, self._g) for eg, _, args, w in self._calls])
        self._kernel_status()
        if self._bytes:
            dst = self.ffi.cast("void *", grad.ctypes.data)
            self._check(self.lib.cfc_cuda_to_host(dst, self._g, self._bytes), "copy the gradient back")
        return total(fam), fam, grad

    def device_name(self) -> str:
        buf = self.ffi.new("char[256]")
        return self.ffi.string(buf).decode() if self.lib.cfc_cuda_device_name(buf, 256) == 0 else "?"
