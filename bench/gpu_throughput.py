"""GPU throughput: the CUDA backend's energy and gradient against the C backend's.

The model has N variables, one Landau term per variable and 4N random quadratic edges with
random per-edge weights (a `data` array), so each evaluation gathers and scatters at random:

    F(x) = sum_i a x_i^2 + b x_i^4  +  sum_e w_e (x_u - x_v)^2      (4N edges e = (u, v))

Both backends share one bound model (one set of instance tables). Timed per evaluation:

  * C:             `CBackend.energy_and_grad(x)`, one CPU thread;
  * CUDA (API):    `CudaBackend.energy_and_grad(x)`: copies x to the GPU, runs the kernels,
                   copies the gradient back (what a solver step pays);
  * CUDA (kernels): the generated wrappers alone, with x and the gradient left on the GPU.

The backends must agree (energy to 1e-12 of the summed |terms|, gradient to 1e-12 of its
largest entry) before anything is timed. Each figure is the median of `--repeat` timed
calls after one warm-up call. Needs an NVIDIA GPU and nvcc; run it through
`bench/gpu_check.sh` or directly:

    python bench/gpu_throughput.py                   # N = 1e5, 1e6, 1e7
    python bench/gpu_throughput.py --sizes 1e5,1e6 --repeat 9
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cfc_dsl  # noqa: E402
from cfc_dsl.runtime.backends.cuda import CudaBackend  # noqa: E402
from cfc_dsl.runtime.backends.native import CBackend  # noqa: E402

MODEL = """\
model gpu_throughput
size N = 10
var x[N] in [0, 1] = 0.5
data edges[M, 2] : int
data w[M]
factor local[i in 0..N] = landau(x[i]; a = -0.5, b = 1.0)
factor net[e in 0..M]   = quadratic(x[edges[e, 0]], x[edges[e, 1]]; w = w[e])
"""
TOL = 1e-12


def median_seconds(call: Callable[[], object], repeat: int) -> float:
    call()  # warm-up: first-touch, the CUDA context, caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def kernels_only(backend: CudaBackend) -> Callable[[], float]:
    """The generated wrappers on device-resident x and gradient: no host copies."""
    calls, lib, nbytes = backend._calls, backend.lib, 8 * backend.bound.n

    def run() -> float:
        lib.cfc_cuda_zero(backend._g, nbytes)
        return sum(w * eg(*args, w, backend._x, backend._g) for eg, _, args, w in calls)

    return run


def check_agreement(c: CBackend, cu: CudaBackend, x: np.ndarray, n: int) -> None:
    e_c, fam_c, g_c = c.energy_and_grad(x)
    e_cu, fam_cu, g_cu = cu.energy_and_grad(x)
    scale = float(np.abs(fam_c).sum()) + 1.0
    g_scale = max(float(np.abs(g_c).max()), 1.0)
    if abs(e_cu - e_c) > TOL * scale or np.max(np.abs(g_cu - g_c)) > TOL * g_scale:
        raise SystemExit(f"N = {n}: CUDA and C disagree (energy {e_cu!r} vs {e_c!r}, "
                         f"gradient max diff {np.max(np.abs(g_cu - g_c)):.3e})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e5,1e6,1e7", help="comma-separated N values")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]

    model = cfc_dsl.loads(MODEL, "gpu_throughput.cfc")
    start = time.perf_counter()
    c_compiled = model.compile(backend="c")
    cu_compiled = model.compile(backend="cuda")
    built = time.perf_counter() - start
    assert c_compiled.kernels is not None and cu_compiled.kernels is not None
    cu_info = cu_compiled.kernels.info

    rows = []
    device = "?"
    for n in sizes:
        rng = np.random.default_rng(args.seed)
        edges = rng.integers(0, n, size=(4 * n, 2), dtype=np.int64)
        weights = rng.uniform(0.1, 1.0, 4 * n)
        bound = c_compiled.bind(sizes={"N": n}, data={"edges": edges, "w": weights}).bound
        del edges, weights
        c = CBackend(bound, c_compiled.kernels.ffi, c_compiled.kernels.lib)
        cu = CudaBackend(bound, cu_compiled.kernels.ffi, cu_compiled.kernels.lib)
        device = cu.device_name()
        x = rng.uniform(0.0, 1.0, n)
        check_agreement(c, cu, x, n)
        t_c = median_seconds(lambda c=c, x=x: c.energy_and_grad(x), args.repeat)
        t_api = median_seconds(lambda cu=cu, x=x: cu.energy_and_grad(x), args.repeat)
        cu._put_x(x)
        t_kernels = median_seconds(kernels_only(cu), args.repeat)
        rows.append((n, 5 * n, t_c, t_api, t_kernels))
        cu.close()
        print(f"  N = {n:.0e} done", file=sys.stderr, flush=True)

    print(f"gpu_throughput: landau(N) + quadratic(4N random edges), energy and gradient, "
          f"median of {args.repeat}")
    print(f"  GPU: {device}; {cu_info.toolchain.version}; flags {' '.join(cu_info.toolchain.flags)}")
    print(f"  CPU: {platform.processor() or platform.machine()}, C backend on one thread; "
          f"both kernels built or fetched in {built:.1f} s")
    print(f"{'N':>10} {'factors':>10} {'C ms':>10} {'CUDA ms':>10} {'kernels ms':>11} "
          f"{'C/CUDA':>8} {'C/kernels':>10} {'Gfactor/s':>10}")
    for n, factors, t_c, t_api, t_k in rows:
        print(f"{n:>10.0e} {factors:>10.0e} {1e3 * t_c:>10.3f} {1e3 * t_api:>10.3f} "
              f"{1e3 * t_k:>11.3f} {t_c / t_api:>8.1f} {t_c / t_k:>10.1f} {factors / t_k / 1e9:>10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
