"""Every registered solver on the issue-8 scenarios, with L-BFGS-B as the reference in the
same run: wall time, kernel passes (HVPs included), steps, energy passes per accepted step
(the result's `evaluations_per_step`), ΔF90, the gap to the best energy any solver
found, the final projected-gradient norm |x - P(x - grad F)|_inf, and the wasted tail: the
share of accepted steps taken after |pg|_inf first fell below 1e-5 ("tail pg"), and after the
energy first came within 1e-9 (relative, floor 1) of its final value ("tail F*"). Ratios, not
timed tests.

Starts. The couplings here (quadratic, directed hinge) depend only on differences, so from a
uniform start their gradients vanish and every variable follows the same 1-D Landau path:
chain, grid and random workload would all be the single-variable problem in disguise (they
once gave identical rows). So the chain starts at 0.9 plus seeded jitter in [-0.05, 0.05],
and the grid and the random workload at seeded uniform points in [0, 1].

    python bench/solvers.py                    # seed, dense-16/32, chains, grid, random 1e4
    python bench/solvers.py --large            # adds chain 1e5 and random 1e5
    python bench/solvers.py --huge             # adds random 1e6 (and seed_dense N = 4096)
    python bench/solvers.py --solvers auto,lbfgsb,prox --markdown
    python bench/solvers.py --large --only "random 1e5,chain 1e5" --solvers auto,lbfgsb --repeat 3

BLAS. SciPy's L-BFGS-B does its vector work in OpenBLAS, whose thread pool on a loaded
machine made a 10^5-entry dot product 100 times slower (10 ms, not 0.1 ms): lbfgsb took 25.7 s
on random 10^5 with the default pool and 3.6 s with one thread, in the same minute. So this
script runs with OPENBLAS_NUM_THREADS=1 unless the environment sets it (the header says which);
cfc's own solvers keep their vector work off BLAS (runtime/solvers/vectors.py). `--repeat K`
reports each solver's best wall time of K runs, taken in turn with the others'.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before NumPy loads BLAS
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import cfc_dsl as cfc  # noqa: E402
from cfc_dsl.runtime.solvers.base import projected_gradient_norm  # noqa: E402
from cfc_dsl.runtime.solvers.registry import solver_names  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
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
GRID = """\
model grid
size R = 64
var eta[R, R] in [0, 1] = 0.9
factor local[i in 0..R, j in 0..R] = landau(eta[i, j]; a = -0.5, b = 1.0)
factor right[i in 0..R, j in 0..R-1] = quadratic(eta[i, j], eta[i, j+1]; w = 0.8)
factor down[i in 0..R-1, j in 0..R] = quadratic(eta[i, j], eta[i+1, j]; w = 0.8)
"""


class Counting:
    """The backend with its energy evaluations counted (every kernel pass is one)."""

    def __init__(self, backend: Any):
        self.inner, self.evals = backend, 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name in ("energy", "energy_and_grad", "family_grads", "hvp", "hess_diag"):
            def counted(*args: Any, **kwargs: Any) -> Any:
                self.evals += 1
                return attr(*args, **kwargs)
            return counted
        return attr


def scenarios(large: bool, huge: bool, only: set[str]) -> list[tuple[str, Any]]:
    load = lambda name: cfc.load(ROOT / "examples" / name).compile()  # noqa: E731
    dense, chain = load("seed_dense.cfc"), load("chain.cfc")
    grid, random = (cfc.loads(GRID, "grid.cfc").compile(),
                    cfc.loads(RANDOM, "random.cfc").compile())

    def chained(n: int) -> Any:
        jitter = np.random.default_rng(1).uniform(-0.05, 0.05, n)
        return chain.bind(sizes={"N": n}, init={"eta": 0.9 + jitter})

    def workload(n: int) -> Any:
        rng = np.random.default_rng(0)
        return random.bind(sizes={"N": n}, init={"x": rng.uniform(0.0, 1.0, n)}, data={
            "edges": rng.integers(0, n, (2 * n, 2)), "w": rng.uniform(0.1, 2.0, 2 * n),
            "hedges": rng.integers(0, n, (2 * n, 2)), "hw": rng.uniform(0.1, 2.0, 2 * n)})

    out: list[tuple[str, Any]] = [
        ("seed baseline", lambda: load("seed_baseline.cfc").bind()),
        ("dense-16", lambda: dense.bind(sizes={"N": 16})),
        ("dense-32", lambda: dense.bind(sizes={"N": 32})),
        ("chain 1e4", lambda: chained(10_000)),
        ("grid 64x64", lambda: grid.bind(init={
            "eta": np.random.default_rng(2).uniform(0.0, 1.0, (64, 64))})),
        ("random 1e4", lambda: workload(10_000)),
    ]
    if large:
        out.insert(4, ("chain 1e5", lambda: chained(100_000)))
        out.append(("random 1e5", lambda: workload(100_000)))
    if huge:
        out.insert(3, ("dense-4096", lambda: dense.bind(sizes={"N": 4096})))
        out.append(("random 1e6", lambda: workload(1_000_000)))
    return [s for s in out if not only or s[0] in only]


def tails(trace: Any) -> tuple[float, float]:
    """Shares of accepted steps after |pg| < 1e-5, and after F came within 1e-9 of F_final."""
    rows = [r for r in trace.records if r.accepted]
    if len(rows) < 2:
        return 0.0, 0.0
    final, steps = rows[-1].energy, len(rows) - 1
    first_pg = next((i for i, r in enumerate(rows) if r.grad_norm < 1e-5), steps)
    first_f = next(i for i, r in enumerate(rows)
                   if abs(r.energy - final) <= 1e-9 * max(1.0, abs(final)))
    return (steps - first_pg) / steps, (steps - first_f) / steps


def run(problem: Any, solver: str, max_steps: int) -> dict[str, Any]:
    counting = Counting(problem.backend)
    problem.backend = counting
    t0 = time.perf_counter()
    try:
        r = problem.relax(solver, max_steps=max_steps)
    except Exception as error:  # a solver that refuses the model (certified without L)
        problem.backend = counting.inner
        return {"solver": solver, "error": str(error).splitlines()[0][:60]}
    wall = time.perf_counter() - t0
    problem.backend = counting.inner
    _, _, g = problem.energy_and_grad(r.x)
    tail_pg, tail_f = tails(r.result.trace)
    return {"solver": r.result.solver if solver != "auto" else f"auto->{r.result.solver}",
            "wall": wall, "evals": counting.evals, "steps": r.steps,
            "per_step": r.result.evaluations_per_step, "df90": r.delta_f90,
            "energy": r.energy, "pg": projected_gradient_norm(r.x, g, problem.lower, problem.upper),
            "tail_pg": tail_pg, "tail_f": tail_f, "reason": r.reason}


ROW = "{:<14}{:<18}{:>9}{:>9}{:>8}{:>7}{:>11}{:>7}{:>10}{:>10}{:>8}{:>8}  {}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--large", action="store_true", help="chain and random at 1e5")
    ap.add_argument("--huge", action="store_true", help="random at 1e6")
    ap.add_argument("--solvers", default=",".join(solver_names()))
    ap.add_argument("--max-steps", type=int, default=20_000)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated scenario names, e.g. 'random 1e6'")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per solver and scenario, in turn; the best wall time is shown")
    args = ap.parse_args()
    solvers = [s for s in args.solvers.split(",") if s]
    load = os.getloadavg()
    print(f"machine load (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
          f"{os.cpu_count()} cores, OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, "
          f"best of {args.repeat}")
    head = ("scenario", "solver", "wall s", "x lbfgsb", "evals", "steps", "evals/step", "ΔF90",
            "gap", "|pg|inf", "tail pg", "tail F*", "reason")
    if args.markdown:
        print("| " + " | ".join(h.replace("|", "\\|") for h in head) + " |\n|"
              + "---|" * len(head))
    else:
        print(ROW.format(*head))
    only = {o.strip() for o in args.only.split(",") if o.strip()}
    warm = cfc.load(ROOT / "examples" / "seed_baseline.cfc").compile()
    for s in solvers:  # untimed: one-off imports (SciPy, NetworkX) are not charged to a row
        run(warm.bind(), s, args.max_steps)
    for scenario, make in scenarios(args.large, args.huge, only):
        rows = [run(make(), s, args.max_steps) for s in solvers]
        for _ in range(args.repeat - 1):  # in turn, so a burst of load hits all alike
            for k, s in enumerate(solvers):
                again = run(make(), s, args.max_steps)
                if again.get("wall", np.inf) < rows[k].get("wall", np.inf):
                    rows[k] = again
        ok = [r for r in rows if "error" not in r]
        best = min(r["energy"] for r in ok)
        ref = next((r["wall"] for r in ok if r["solver"] == "lbfgsb"), None)
        for r in rows:
            if "error" in r:
                cells = (scenario, r["solver"], *["-"] * 10, r["error"])
            else:
                ratio = f"{r['wall'] / ref:.2f}" if ref else "-"
                cells = (scenario, r["solver"], f"{r['wall']:.3f}", ratio, str(r["evals"]),
                         str(r["steps"]), f"{r['per_step']:.2f}",
                         str(r["df90"]),
                         f"{(r['energy'] - best) / max(1.0, abs(best)):.1e}",
                         f"{r['pg']:.1e}", f"{r['tail_pg']:.0%}", f"{r['tail_f']:.0%}",
                         r["reason"])
            if args.markdown:
                print("| " + " | ".join(cells) + " |", flush=True)
            else:
                print(ROW.format(*cells), flush=True)
    load = os.getloadavg()
    print(f"machine load at the end (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
