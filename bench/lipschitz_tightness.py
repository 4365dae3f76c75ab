"""How tight are the curvature bounds? For each smooth stdlib energy, the ratio

    bound on |d2E/dx_i dx_j| over a box  /  max of the true |d2E/dx_i dx_j| on a dense grid

for 40 random parameter draws, on the unit box [0, 1]^k and on [-1, 1]^k, and for a few user
energies where interval arithmetic loses. Two bounds: the interval formula (what the
generated cfc_hb_<energy> computes, and what `certified` uses) and `evaluate_bound` (exact
max for polynomial entries). Then, per example model, the Gershgorin L against the largest
|eigenvalue| of the Hessian of F found at sampled points of the box (finite differences of
the compiled gradient), and the steps `certified` and `pgd` take. Prints Markdown tables
(pasted into docs/lipschitz.md).

    python bench/lipschitz_tightness.py [--draws 40] [--seed 11] [--points 20]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import sympy as sp

import cfc_dsl as cfc
from cfc_dsl.checker import load_text, stdlib_energies
from cfc_dsl.derive import derive_energy, derive_model
from cfc_dsl.functions import NUMPY_FUNCTIONS
from cfc_dsl.lipschitz import evaluate_bound, hessian_bound

SMOOTH = ("landau", "order", "gate_local", "compression", "quadratic", "directed_hinge",
          "asym_hinge")
USER = (("x^4 - x^3", "x"), ("x^2 * y^2", "x, y"), ("sin(x * y)", "x, y"),
        ("log(1 + x^2) + softplus(x) * tanh(y)", "x, y"), ("relu(x - 0.5)^3", "x"))
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def params_for(name: str, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    u = lambda a, b: rng.uniform(a, b, n)  # noqa: E731
    return {
        "landau": lambda: dict(a=u(-1, 1), b=u(1e-3, 1), h=u(-1, 1)),
        "order": lambda: dict(a=u(-1, 1), b=u(1e-3, 1)),
        "gate_local": lambda: dict(a=u(-1, 1), b=u(1e-3, 1)),
        "compression": lambda: dict(a=u(-1, 1), b=u(1e-3, 1), t=u(-0.5, 1.5)),
        "quadratic": lambda: dict(w=u(-2, 2)),
        "directed_hinge": lambda: dict(w=u(-2, 2)),
        "asym_hinge": lambda: dict(w=u(-2, 2), alpha=u(0, 2), beta=u(0, 2)),
    }[name]()


def interval_only(hb, params: dict, lo: dict, hi: dict) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The SymPy interval formulas as the C function evaluates them (no polynomial max)."""
    args = [sp.Symbol(p, real=True) for p in hb.params] + list(hb.lower) + list(hb.upper)
    values = [params[p] for p in hb.params] + [lo[s] for s in hb.slots] + \
        [hi[s] for s in hb.slots]
    n, k = len(values[0]), len(hb.slots)
    values = [np.broadcast_to(np.asarray(v, float), (n,)) for v in values]
    out = np.zeros((n, k, k))
    for i, j in itertools.product(range(k), repeat=2):
        if hb.entries[i][j] != 0:
            fn = sp.lambdify(args, hb.entries[i][j], [NUMPY_FUNCTIONS, "numpy"])
            out[:, i, j] = np.broadcast_to(np.asarray(fn(*values), float), (n,))
    return out * (1 + 1e-12) + 1e-300


def true_max(d, params: dict, a: float, b: float) -> np.ndarray:  # type: ignore[no-untyped-def]
    """max over a grid of [a, b]^k (corners included) of |H_ij|, per draw: (n, k, k)."""
    k = len(d.slots)
    hess = [[sp.diff(g, s) for s in d.slots] for g in d.grad]
    fn = sp.lambdify(d.slots + d.params, hess, [NUMPY_FUNCTIONS, "numpy"])
    grid = np.linspace(a, b, 2001 if k == 1 else 121)
    pts = [g.ravel()[None, :] for g in np.meshgrid(*[grid] * k, indexing="ij")]
    rows = fn(*pts, *(params[p.name][:, None] for p in d.params))
    n = len(next(iter(params.values()))) if params else 1
    h = np.array([[np.broadcast_to(np.abs(np.asarray(v, float)), (n, pts[0].size))
                   for v in r] for r in rows])
    return np.moveaxis(h.max(axis=-1), -1, 0)


def user_energy(body: str, slots: str):  # type: ignore[no-untyped-def]
    args = ", ".join(f"v[{i}]" for i in range(len(slots.split(","))))
    text = f"var v[3]\nenergy e({slots}; ) = {body}\nfactor f = e({args})"
    return next(d for d in derive_model(load_text(text, "t.cfc")) if d.name == "e")


def entry_row(label: str, d, params: dict, a: float, b: float) -> str:  # type: ignore[no-untyped-def]
    """The worst entry (by the interval ratio) of one energy on [a, b]^k."""
    hb = hessian_bound(d)
    n = len(next(iter(params.values()))) if params else 1
    lo, hi = {s: np.full(n, a) for s in hb.slots}, {s: np.full(n, b) for s in hb.slots}
    exact = true_max(d, params, a, b)
    iv = interval_only(hb, params, lo, hi)
    ev = evaluate_bound(hb, params, lo, hi)
    worst = None
    for i, j in itertools.combinations_with_replacement(range(len(hb.slots)), 2):
        live = exact[:, i, j] > 1e-12
        if not live.any():
            continue
        r_iv, r_ev = iv[live, i, j] / exact[live, i, j], ev[live, i, j] / exact[live, i, j]
        assert r_iv.min() >= 1 - 1e-9 and r_ev.min() >= 1 - 1e-9, (label, i, j)
        row = (r_iv.max(), np.median(r_iv), r_ev.max(), np.median(r_ev),
               f"{hb.slots[i]}{hb.slots[j]}: {hb.method[i][j]}")
        worst = row if worst is None or row[0] > worst[0] else worst
    assert worst is not None
    box = f"[{a:g}, {b:g}]^{len(hb.slots)}"
    return (f"| {label} | {box} | {worst[4]} | {worst[0]:.4f} | {worst[1]:.4f} | "
            f"{worst[2]:.4f} | {worst[3]:.4f} |")


def fd_hessian(problem, x: np.ndarray, h: float = 1e-6) -> np.ndarray:  # type: ignore[no-untyped-def]
    cols = []
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = h
        cols.append((problem.energy_and_grad(x + e)[2] - problem.energy_and_grad(x - e)[2])
                    / (2 * h))
    m = np.array(cols).T
    return (m + m.T) / 2


def global_rows(points: int, seed: int) -> list[str]:
    from cfc_dsl.runtime.lipschitz import global_lipschitz

    rows = []
    for path in sorted(EXAMPLES.glob("*.cfc")):
        data = {"shortcuts": EXAMPLES / "grid_shortcuts.npy"} if "shortcuts" in \
            path.read_text() else None
        problem = cfc.load(str(path)).compile(backend="c").bind(data=data)
        gb = global_lipschitz(problem, refine=False)
        lo, hi, rng = problem.lower, problem.upper, np.random.default_rng(seed)
        certified = problem.relax("certified", max_steps=5000)
        pgd = problem.relax("pgd", max_steps=5000)
        xs = [lo + 2e-6 + (hi - lo - 4e-6) * rng.uniform(0, 1, lo.size) for _ in range(points)]
        xs += [np.clip(x, lo + 2e-6, hi - 2e-6) for x in (lo, hi, problem.bound.x0, pgd.x)]
        rho = max(float(np.max(np.abs(np.linalg.eigvalsh(fd_hessian(problem, x))))) for x in xs)
        top = max(gb.families, key=lambda f: f.share)
        rows.append(f"| {path.stem} | {problem.bound.n} | {gb.L:.4g} ({gb.variable}; "
                    f"{top.name} {top.share:.3g}) | {rho:.4g} | {gb.L / rho:.3f} | "
                    f"{1 / gb.L:.4g} | {certified.steps} ({certified.reason}) | "
                    f"{pgd.steps} ({pgd.reason}) |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=40)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--points", type=int, default=20)
    args = ap.parse_args()
    specs = {e.name: e for e in stdlib_energies()}
    print("| energy | box | worst entry: method | interval max | interval median | "
          "evaluate_bound max | evaluate_bound median |")
    print("|---|---|---|---|---|---|---|")
    for name in SMOOTH:
        d = derive_energy(specs[name], specs)
        for a, b in ((0.0, 1.0), (-1.0, 1.0)):
            params = params_for(name, np.random.default_rng(args.seed), args.draws)
            print(entry_row(name, d, params, a, b))
    for body, slots in USER:
        for a, b in ((0.0, 1.0), (-1.0, 1.0)):
            print(entry_row(f"`{body}`", user_energy(body, slots), {}, a, b))
    print()
    print("| example | n | L (at; largest share) | max sampled ρ(H_F) | L / ρ | step 1/L | "
          "certified steps | pgd steps |")
    print("|---|---|---|---|---|---|---|---|")
    for row in global_rows(args.points, args.seed):
        print(row)


if __name__ == "__main__":
    main()
