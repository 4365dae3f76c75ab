"""Where a small relaxation's time goes (issue 12 item 4): the standard workload (a Landau
term per variable plus 4N random quadratic and directed-hinge edges with per-edge weights,
as bench/solvers.py builds it) at N = 10^2 and 10^3, relaxed by the default solver (`auto`,
newton, whose trials run in C where they can: solvers/tronloop.py) and by `pgd` (its steps
in C: solvers/cloop.py); `NAME:py` runs the same with CFC_C_LOOPS=0, the Python loops (the
baseline). Per row: the wall time of the relaxation; "kernel ms", the time inside the C
kernels (each of the backend's kernel entry points wrapped with perf_counter, in this bench
only, plus the passes and products the C loops make themselves, which no wrapper sees, each
at the cost of one `cfc_eg_all` or HVP pass timed alone in this run); "wrap ms", the
backend's Python wrappers around its kernels; "loop ms", the C loops' own arithmetic (their
calls timed, less the kernel passes inside them); "python", the share of the wall time in
neither kernels nor C loops: Python; kernel passes, accepted steps and passes per step; and
the second-order test's share of the wall time.

The wall time is taken from a run without the timing wrappers (they add ~0.2 us per call);
the kernel and backend times from a second, identical run with them (the same iterates: the
wrappers change no arithmetic). Best of `--repeat` runs each, the load average beside.

    python bench/small_relax.py                  # N = 100, 1000; auto and pgd
    python bench/small_relax.py --sizes 1000 --solvers auto --profile   # + cProfile top 25
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before NumPy loads BLAS
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from functools import partial  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import cfc_dsl as cfc  # noqa: E402
from cfc_dsl.runtime.solvers import base as solver_base  # noqa: E402
from cfc_dsl.runtime.solvers import cgloop, clanczos, cloop, tronloop  # noqa: E402

RANDOM = """\
model random_workload
size N = 10
var x[N] in [0, 1] = 0.9
data edges[M, 2] : int
data w[M]
data hedges[K, 2] : int
data hw[K]
factor local[i in 0..N] = landau(x[i]; a = -0.5, b = 1.0)
factor quad[e in 0..M]  = quadratic(x[edges[e, 0]], x[edges[e, 1]]; w = w[e])
factor hinge[e in 0..K] = directed_hinge(x[hedges[e, 0]], x[hedges[e, 1]]; w = hw[e])
"""


def workload(compiled: Any, n: int) -> Any:
    """bench/solvers.py's random workload: 2N quadratic and 2N hinge edges, seeded."""
    rng = np.random.default_rng(0)
    return compiled.bind(sizes={"N": n}, init={"x": rng.uniform(0.0, 1.0, n)}, data={
        "edges": rng.integers(0, n, (2 * n, 2)), "w": rng.uniform(0.1, 2.0, 2 * n),
        "hedges": rng.integers(0, n, (2 * n, 2)), "hw": rng.uniform(0.1, 2.0, 2 * n)},
        threads=1)


class Clock:
    """Seconds and calls, summed by name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        perf = time.perf_counter

        def timed(*args: Any) -> Any:
            t0 = perf()
            try:
                return fn(*args)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + perf() - t0
                self.calls[name] = self.calls.get(name, 0) + 1
        return timed

    def total(self, prefix: str) -> float:
        return sum(s for k, s in self.seconds.items() if k.startswith(prefix))


def instrument(backend: Any, clock: Clock) -> None:
    """Wrap the C entry points the backend calls (CBackend's bound calls and cfc_eg_all) as
    `kernel:*`, and its public methods as `backend:*`. Only the bench does this."""
    if getattr(backend, "_all", None) is not None:
        backend._all = clock.wrap("kernel:eg_all", backend._all)
    for attr in ("_e_plan", "_eg_plan"):
        plan = getattr(backend, attr, None)
        if plan is not None:
            setattr(backend, attr, [clock.wrap(f"kernel:{attr[1:]}", p) for p in plan])
    if getattr(backend, "_second", None) is not None:
        backend._second = [(clock.wrap("kernel:hv", hv), clock.wrap("kernel:hd", hd))
                           for hv, hd in backend._second]
    for name in ("energy", "energy_and_grad", "hvp", "hess_diag", "family_grads"):
        method = getattr(backend, name, None)
        if method is not None:
            setattr(backend, name, clock.wrap(f"backend:{name}", method))


def relax(problem: Any, solver: str, max_steps: int) -> tuple[float, Any, float]:
    """(wall s, result, seconds in the final second-order tests)."""
    spent = [0.0]
    test = solver_base.second_order_test

    def timed_test(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return test(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t0

    solver_base.second_order_test = timed_test
    try:
        t0 = time.perf_counter()
        r = problem.relax(solver, max_steps=max_steps)
        wall = time.perf_counter() - t0
    finally:
        solver_base.second_order_test = test
    return wall, r, spent[0]


def pass_cost(problem: Any, repeat: int = 200) -> float:
    """Seconds per `cfc_eg_all` pass at the start point, called directly (no wrapper)."""
    backend = problem.backend
    if getattr(backend, "_all", None) is None:
        return 0.0
    x = np.ascontiguousarray(problem.point(None))
    g, w = np.zeros_like(x), np.ascontiguousarray(backend.weights)
    ptr = partial(backend.ffi.from_buffer, "double[]")
    call = partial(backend._all, len(backend._families), backend._families, ptr(w), ptr(x),
                   ptr(g), x.size, backend._ep)
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeat):
            call()
        best = min(best, (time.perf_counter() - t0) / repeat)
    return best


def hvp_cost(problem: Any, repeat: int = 200) -> float:
    """Seconds per HVP pass (every family's `cfc_hv_*`, called directly) at the start point:
    what newton's CG loop in C (solvers/cgloop.py) spends per product, unseen by wrappers."""
    backend = problem.backend
    if getattr(backend, "_second", None) is None:
        return 0.0
    x = np.ascontiguousarray(problem.point(None))
    v, out = np.ones_like(x), np.zeros_like(x)
    ptr = partial(backend.ffi.from_buffer, "double[]")
    xp, vp, op = ptr(x), ptr(v), ptr(out)
    calls = [partial(hv, *args, w, xp, vp, op) for (_, _, args, _), (hv, _), w
             in zip(backend._calls, backend._second, backend.weights.tolist(), strict=True)]
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeat):
            for call in calls:
                call()
        best = min(best, (time.perf_counter() - t0) / repeat)
    return best


class Loops:
    """Times the C loops' calls and counts the products they make, which no wrapper sees:
    newton's CG loop (solvers/cgloop.py, used by its Python loop), its whole-step loop
    (solvers/tronloop.py: its istate[4] counts HVP and Hessian-diagonal passes), pgd's
    (solvers/cloop.py) and the second-order test's Lanczos steps (solvers/clanczos.py: |m|
    HVPs per call). The passes of `cfc_eg_all` inside them are the evaluations the
    backend wrappers did not see."""

    def __init__(self) -> None:
        self.products = 0
        self.seconds = 0.0
        self._saved: list[tuple[Any, str, Any]] = []

    def _patch(self, owner: Any, name: str, counted: Callable[[Any, Any], int]) -> None:
        orig = getattr(owner, name)
        perf = time.perf_counter

        def timed(loop: Any, *args: Any) -> Any:
            t0 = perf()
            out = orig(loop, *args)
            self.seconds += perf() - t0
            self.products += counted(args, out)
            return out
        self._saved.append((owner, name, orig))
        setattr(owner, name, timed)

    def __enter__(self) -> Loops:
        self._patch(cgloop.CgLoop, "steihaug", lambda args, out: int(out[3]))
        self._patch(tronloop.TronLoop, "call", lambda args, out: int(args[17][4]))
        self._patch(cloop.PgdLoop, "call", lambda args, out: 0)
        self._patch(clanczos.LanczosLoop, "call", lambda args, out: abs(int(out)))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, orig in reversed(self._saved):
            setattr(owner, name, orig)


def measure(compiled: Any, n: int, spec: str, repeat: int, max_steps: int) -> dict[str, Any]:
    solver, _, variant = spec.partition(":")
    if variant == "py":
        os.environ["CFC_C_LOOPS"] = "0"
    try:
        return _measure(compiled, n, solver, repeat, max_steps) | {"spec": spec}
    finally:
        os.environ.pop("CFC_C_LOOPS", None)


def _measure(compiled: Any, n: int, solver: str, repeat: int, max_steps: int) -> dict[str, Any]:
    best: dict[str, Any] = {}
    cost = pass_cost(workload(compiled, n))
    hv_cost = hvp_cost(workload(compiled, n))
    for _ in range(repeat):
        wall, r, so = relax(workload(compiled, n), solver, max_steps)
        if not best or wall < best["wall"]:
            best = {"wall": wall, "r": r, "so": so}
        problem = workload(compiled, n)
        clock = Clock()
        instrument(problem.backend, clock)
        with Loops() as loops:
            timed_wall, timed, _ = relax(problem, solver, max_steps)
        if "clock" not in best or timed_wall < best["timed_wall"]:
            best.update(clock=clock, timed_wall=timed_wall, timed=timed,
                        products=loops.products, loop_s=loops.seconds)
    r, clock = best["r"], best["clock"]
    assert np.array_equal(r.x, best["timed"].x), "the timing wrappers changed the iterates"
    kernel, backend = clock.total("kernel:"), clock.total("backend:")
    wrappers = backend - kernel
    seen = clock.calls.get("backend:energy", 0) + clock.calls.get("backend:energy_and_grad", 0)
    in_c = max(0, best["timed"].result.evaluations - seen)  # passes the C loops made
    inside = in_c * cost + best["products"] * hv_cost  # their kernel passes and products
    kernel += inside
    loop = max(0.0, best["loop_s"] - inside)  # the C loops' own arithmetic
    return {"n": n, "solver": r.solver if solver != "auto" else f"auto->{r.solver}",
            "wall": best["wall"], "kernel": kernel, "wrappers": wrappers,
            "loop": loop, "python": 1.0 - (kernel + loop) / best["wall"],
            "so": best["so"] / best["wall"],
            "evals": r.result.evaluations, "steps": r.steps,
            "per_step": r.result.evaluations_per_step,
            "in_c": in_c,
            "reason": r.reason, "energy": r.energy}


ROW = "{:>6}  {:<17}{:>10}{:>10}{:>9}{:>9}{:>9}{:>8}{:>7}{:>7}{:>7}{:>8}  {:<10}{}"


def profile(compiled: Any, n: int, solver: str, max_steps: int) -> None:
    import cProfile
    import pstats

    problem = workload(compiled, n)
    prof = cProfile.Profile()
    prof.runcall(partial(problem.relax, solver, max_steps=max_steps))
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000")
    ap.add_argument("--solvers", default="auto,auto:py,pgd,pgd:py",
                    help="solver names; NAME:py runs it with CFC_C_LOOPS=0")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--max-steps", type=int, default=20_000)
    ap.add_argument("--profile", action="store_true", help="cProfile each row once after")
    args = ap.parse_args()
    one, five, fifteen = os.getloadavg()
    print(f"machine load (1, 5, 15 min): {one:.2f} {five:.2f} {fifteen:.2f}, "
          f"{os.cpu_count()} cores, best of {args.repeat}, threads=1")
    compiled = cfc.loads(RANDOM, "random.cfc").compile()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    solvers = [s for s in args.solvers.split(",") if s]
    for s in solvers:  # untimed warm-up: one-off imports and builds are not charged to a row
        relax(workload(compiled, 20), s.partition(":")[0], 50)
    print(ROW.format("N", "solver", "wall ms", "kernel ms", "wrap ms", "loop ms",
                     "python", "2nd-ord",
                     "evals", "steps", "ev/st", "us/step", "reason", "  energy"))
    for n in sizes:
        for s in solvers:
            m = measure(compiled, n, s, args.repeat, args.max_steps)
            name = m["solver"] + (" (py)" if m["spec"].endswith(":py") else "")
            print(ROW.format(n, name, f"{m['wall'] * 1e3:.2f}",
                             f"{m['kernel'] * 1e3:.2f}", f"{m['wrappers'] * 1e3:.2f}",
                             f"{m['loop'] * 1e3:.2f}",
                             f"{m['python']:.0%}", f"{m['so']:.0%}", m["evals"], m["steps"],
                             f"{m['per_step']:.2f}",
                             f"{m['wall'] / max(m['steps'], 1) * 1e6:.0f}", m["reason"],
                             f"  {m['energy']:.12g}"), flush=True)
    one, five, fifteen = os.getloadavg()
    print(f"machine load at the end (1, 5, 15 min): {one:.2f} {five:.2f} {fifteen:.2f}")
    if args.profile:
        for n in sizes:
            for s in solvers:
                print(f"--- cProfile N = {n}, {s}")
                if s.endswith(":py"):
                    os.environ["CFC_C_LOOPS"] = "0"
                profile(compiled, n, s.partition(":")[0], args.max_steps)
                os.environ.pop("CFC_C_LOOPS", None)


if __name__ == "__main__":
    main()
