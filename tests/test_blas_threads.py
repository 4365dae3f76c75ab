"""The solvers' results do not depend on OPENBLAS_NUM_THREADS (issue 12 follow-up).

OpenBLAS's ddot (behind NumPy's `a @ b`, `np.dot` and `np.linalg.norm` of a 1-D array) splits
a vector of more than 10,000 entries over its threads, so the order of summation, and with it
the last bits of every inner product, changes with the thread count. The solvers and the
trace recorder take their inner products and norms with `solvers.vectors` instead; this runs
each first-order solver on a random 20,000-variable model in two interpreters, one with one
BLAS thread and one with two, and compares the final states, energies and every trace row's
step length bit for bit. (At 2,000 variables ddot never splits, so the test could not fail.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = {"pgd": 60, "apg": 60, "prox": 60, "admm": 6, "cd": 10}  # admm and cd: ~2 s a step here
SOLVERS = tuple(STEPS)

_RUN = """
import hashlib, json, sys
import numpy as np
import cfc_dsl as cfc

MODEL = '''model random_workload
size N = 10
var x[N] in [0, 1] = 0.9
data edges[M, 2] : int
data w[M]
data hedges[K, 2] : int
data hw[K]
factor local[i in 0..N] = landau(x[i]; a = -0.5, b = 1.0)
factor quad[e in 0..M]  = quadratic(x[edges[e, 0]], x[edges[e, 1]]; w = w[e])
factor hinge[e in 0..K] = directed_hinge(x[hedges[e, 0]], x[hedges[e, 1]]; w = hw[e])
'''
n = 20_000
rng = np.random.default_rng(0)
problem = cfc.loads(MODEL, "random.cfc").compile().bind(
    sizes={"N": n}, init={"x": rng.uniform(0.0, 1.0, n)},
    data={"edges": rng.integers(0, n, (2 * n, 2)), "w": rng.uniform(0.1, 2.0, 2 * n),
          "hedges": rng.integers(0, n, (2 * n, 2)), "hw": rng.uniform(0.1, 2.0, 2 * n)})
out = {}
for solver, steps in zip(sys.argv[1::2], sys.argv[2::2]):
    r = problem.relax(solver, max_steps=int(steps))
    lengths = [rec.step_length for rec in r.result.trace.records]
    out[solver] = {"x": hashlib.sha256(np.ascontiguousarray(r.x).tobytes()).hexdigest(),
                   "energy": float(r.energy).hex(), "steps": r.steps,
                   "lengths": [float(v).hex() for v in lengths]}
print(json.dumps(out))
"""


def _run(threads: int) -> dict[str, dict[str, object]]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
    env.pop("MKL_NUM_THREADS", None)
    args = [str(v) for item in STEPS.items() for v in item]  # solver, max_steps, ...
    done = subprocess.run([sys.executable, "-c", _RUN, *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_first_order_solvers_do_not_depend_on_blas_threads() -> None:
    one, two = _run(1), _run(2)  # the second interpreter finds the kernel in the shared cache
    for solver in SOLVERS:
        assert one[solver]["steps"] > 1, f"{solver} took no steps: nothing was compared"
    differ = [solver for solver in SOLVERS if one[solver] != two[solver]]
    assert not differ, f"1 and 2 BLAS threads give different bits in {differ}"
