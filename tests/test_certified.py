"""Certified Lipschitz bounds end to end: the generated `cfc_hb_<energy>` against the Python
interval evaluation, the Gershgorin L against the true Hessian of F, the `certified` solver
(never raises F, on random models), its refusal of non-Lipschitz models, `pgd` with L, and
the `lipschitz` object of `cfc run --json`."""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import cfc_dsl as cfc
from cfc_dsl.checker import stdlib_energies
from cfc_dsl.codegen.render import render_model
from cfc_dsl.derive import derive_energy
from cfc_dsl.functions import NUMPY_FUNCTIONS
from cfc_dsl.lipschitz import evaluate_bound, hessian_bound
from cfc_dsl.runtime.build.toolchain import find_compiler
from cfc_dsl.runtime.lipschitz import global_lipschitz, instance_bounds, lipschitz_report
from cfc_dsl.runtime.solvers.base import StopReason
from conftest import EXAMPLES, ROOT, run_cfc

pytestmark = pytest.mark.skipif(find_compiler() is None, reason="no C compiler found")

SPECS = {e.name: e for e in stdlib_energies()}
STDLIB = sorted(SPECS)

# ---------------------------------------------------------------- (a) C bound == Python
# Every stdlib energy once; the bound functions are called directly with random boxes.
def _call(name: str) -> str:
    slots = ", ".join(f"x[{i}]" for i in range(len(SPECS[name].slots)))
    needed = [p.name for p in SPECS[name].params if p.default is None]
    return f"{name}({slots}; {', '.join(f'{p} = 1' for p in needed)})"


ALL_STDLIB = "model all_stdlib\nvar x[2] in [0, 1] = 0.5\n" + "\n".join(
    f"factor f_{name} = {_call(name)}" for name in STDLIB) + "\n"


@functools.cache
def all_stdlib():  # type: ignore[no-untyped-def]
    return cfc.loads(ALL_STDLIB, "all_stdlib.cfc").compile(backend="c")


def sample(name: str, rng: np.random.Generator, n: int) -> tuple[dict, dict, dict]:
    """Random params and boxes: zeros, degenerate boxes and boxes around kinks included."""
    hb = hessian_bound(derive_energy(SPECS[name], SPECS))
    params = {p: np.where(rng.random(n) < 0.1, 0.0, rng.uniform(-2, 2, n)) for p in hb.params}
    if "p" in params:
        params["p"] = rng.choice([0.0, 1.0, 1.5, 2.0, 2.5, 3.0], n)
    lo0 = 0.0 if name == "damped_gate_benefit" else -1.5
    lo = {s: np.where(rng.random(n) < 0.1, 0.0, rng.uniform(lo0, 1.0, n)) for s in hb.slots}
    hi = {s: lo[s] + np.where(rng.random(n) < 0.1, 0.0, rng.uniform(0, 1.5, n))
          for s in hb.slots}
    return params, lo, hi


def call_c(name: str, params: dict, lo: dict, hi: dict) -> np.ndarray:
    kernels = all_stdlib().kernels
    hb = hessian_bound(derive_energy(SPECS[name], SPECS))
    arrays = [np.ascontiguousarray(a, dtype=float) for s in hb.slots for a in (lo[s], hi[s])]
    arrays += [np.ascontiguousarray(params[p], dtype=float) for p in hb.params]
    n, k = len(arrays[0]), len(hb.slots)
    out = np.full((n, k, k), -1.0)
    ptr = lambda a: kernels.ffi.cast("double *", a.ctypes.data)  # noqa: E731
    getattr(kernels.lib, f"cfc_hb_{name}")(n, *map(ptr, arrays), ptr(out))
    return out


def python_interval(name: str, params: dict, lo: dict, hi: dict) -> np.ndarray:
    """The SymPy entries, lambdified, rounded out as evaluate_bound rounds them."""
    hb = hessian_bound(derive_energy(SPECS[name], SPECS))
    args = [sp.Symbol(p, real=True) for p in hb.params] + list(hb.lower) + list(hb.upper)
    values = [params[p] for p in hb.params] + [lo[s] for s in hb.slots] + \
        [hi[s] for s in hb.slots]
    n, k = len(values[0]), len(hb.slots)
    out = np.zeros((n, k, k))
    for i, j in itertools.product(range(k), repeat=2):
        e = hb.entries[i][j]
        if e == 0:
            continue
        fn = sp.lambdify(args, e, [NUMPY_FUNCTIONS, "numpy"])
        with np.errstate(all="ignore"):
            v = np.broadcast_to(np.asarray(fn(*values), dtype=float), (n,))
            out[:, i, j] = np.where(np.isnan(v), np.inf, v) * (1 + 1e-12) + 1e-300
    return out


@pytest.mark.parametrize("name", STDLIB)
def test_c_bound_equals_the_python_interval_evaluation(name: str) -> None:
    params, lo, hi = sample(name, np.random.default_rng(5), 2000)
    c, py = call_c(name, params, lo, hi), python_interval(name, params, lo, hi)
    assert np.all(c >= 0)
    assert np.array_equal(np.isinf(c), np.isinf(py)), name
    finite = np.isfinite(c)
    assert np.allclose(c[finite], py[finite], rtol=1e-12, atol=1e-300), name
    # evaluate_bound is at least as tight (its polynomial entries are exact maxima)
    hb = hessian_bound(derive_energy(SPECS[name], SPECS))
    ev = evaluate_bound(hb, params, lo, hi)
    assert np.all(ev <= c * (1 + 1e-6)), name  # up to its rounding margin
    interval = np.array([[m == "interval" for m in row] for row in hb.method])
    assert np.allclose(ev[:, interval], c[:, interval], rtol=1e-12, atol=1e-300)


def test_bound_prototypes_agree_in_header_cdef_and_source() -> None:
    r = render_model(cfc.loads(ALL_STDLIB, "all_stdlib.cfc"))
    proto = re.compile(r'^(?:extern "C" )?void (cfc_hb_\w+)\((.*)\)(;?)$', re.MULTILINE)
    header = [m.groups()[:2] for m in proto.finditer(r.header)]
    cdef = [m.groups()[:2] for m in proto.finditer(r.cdef)]
    source = [m.groups()[:2] for m in proto.finditer(r.source) if not m.group(3)]
    assert [h[0] for h in header] == [f"cfc_hb_{n}" for n in STDLIB]
    assert header == cdef == source
    assert header[STDLIB.index("quadratic")][1] == (
        "int64_t n, const double *lo_x, const double *hi_x, const double *lo_y, "
        "const double *hi_y, const double *P_w, double *H")


def test_cache_entry_stores_the_static_verdicts() -> None:
    info = all_stdlib().info
    meta = json.loads((info.path / "entry.json").read_text())["lipschitz"]
    assert set(meta) == set(STDLIB)
    assert meta["margin_hinge"]["lipschitz"] is False
    assert "kink" in meta["margin_hinge"]["reason"]
    assert meta["landau"] == {"lipschitz": True, "reason": "", "method": [["polynomial"]]}


# ---------------------------------------------------------------- (b) random models
SMOOTH = {  # family -> (energy, arity, parameter ranges)
    "landau": ("landau", 1, {"a": (-1.0, 1.0), "b": (-0.5, 1.0), "h": (-0.5, 0.5)}),
    "order": ("order", 1, {"a": (-1.0, 2.0), "b": (0.0, 1.0)}),
    "gate_local": ("gate_local", 1, {"a": (-0.5, 0.5), "b": (0.0, 0.5)}),
    "compression": ("compression", 1, {"a": (0.0, 2.0), "b": (0.0, 1.0), "t": (-0.5, 1.5)}),
    "gate_benefit": ("gate_benefit", 1, {"w": (0.0, 2.0), "delta": (-0.5, 0.5)}),
    "quadratic": ("quadratic", 2, {"w": (-1.0, 2.0)}),
    "directed_hinge": ("directed_hinge", 2, {"w": (0.0, 2.0)}),
    "asym_hinge": ("asym_hinge", 2, {"w": (0.0, 2.0), "alpha": (0.0, 2.0), "beta": (0.0, 2.0)}),
}


def property_source() -> str:
    """eta[N] in [lo, hi] with every smooth family; g[N] in [0, 1] carries the damped gate
    benefit with p in {1, 2, 2.5, 3}, where its curvature is finite on the box."""
    lines = ["model certified_property", "size N = 4", "param lo = 0", "param hi = 1",
             "data edges[M, 2] : int", "data x0[N]", "data p_damped[N, 6]",
             "var eta[N] in [lo, hi]", "init eta[i in 0..N] = lo + (hi - lo) * x0[i]",
             "var g[N] in [0, 1]", "init g[i in 0..N] = x0[i]",
             "factor damped[i in 0..N] = damped_gate_benefit(g[i]; " + ", ".join(
                 f"{p} = p_damped[i, {k}]" for k, p in
                 enumerate(("w", "delta", "damping", "p", "pos", "neg"))) + ")",
             "factor tie[i in 0..N] = quadratic(g[i], eta[i]; w = 0.5)"]
    for fam, (energy, arity, params) in SMOOTH.items():
        table = "N" if arity == 1 else "M"
        lines.append(f"data p_{fam}[{table}, {len(params)}]")
        row = "i" if arity == 1 else "e"
        args = ", ".join(f"{p} = p_{fam}[{row}, {k}]" for k, p in enumerate(params))
        slots = "eta[i]" if arity == 1 else "eta[edges[e, 0]], eta[edges[e, 1]]"
        ranges = "i in 0..N" if arity == 1 else "e in 0..M"
        lines.append(f"factor {fam}[{ranges}] = {energy}({slots}; {args})")
    return "\n".join(lines) + "\n"


@functools.cache
def property_compiled():  # type: ignore[no-untyped-def]
    return cfc.loads(property_source(), "certified_property.cfc").compile(backend="c")


@st.composite
def random_models(draw):  # type: ignore[no-untyped-def]
    n = draw(st.integers(2, 10))
    pairs = [(i, j) for i in range(n) for j in range(n)]  # self-loops included
    edges = draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=3 * n))
    weights = {fam: draw(st.sampled_from([0.0, 1.0]) | st.floats(-1.0, 3.0))
               for fam in [*SMOOTH, "damped", "tie"]}
    lo = draw(st.floats(-1.5, 0.5))
    hi = lo + draw(st.floats(0.0, 2.0))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    data = {"edges": np.array(edges, dtype=np.int64), "x0": rng.uniform(0.0, 1.0, n)}
    for fam, (_, arity, params) in SMOOTH.items():
        rows = n if arity == 1 else len(edges)
        data[f"p_{fam}"] = np.column_stack([rng.uniform(a, b, rows) for a, b in params.values()])
    damped = rng.uniform(-1, 1, (n, 6))
    damped[:, 3] = rng.choice([1.0, 2.0, 2.5, 3.0], n)  # p = 0: the kernel gradient is NaN at 0
    damped[:, [2, 4, 5]] = np.abs(damped[:, [2, 4, 5]])
    data["p_damped"] = damped
    return n, data, weights, {"lo": lo, "hi": hi}


def bind_random(case):  # type: ignore[no-untyped-def]
    n, data, weights, params = case
    return property_compiled().bind(sizes={"N": n}, data=data, weights=weights, params=params)


@settings(max_examples=40, deadline=None)
@given(random_models())
def test_certified_never_increases_the_energy(case) -> None:  # type: ignore[no-untyped-def]
    problem = bind_random(case)
    gb = global_lipschitz(problem, refine=False)
    assert gb.finite and gb.offending is None
    relaxation = problem.relax("certified", max_steps=300)
    result, trace = relaxation.result, relaxation.trace
    assert result.solver == "certified"
    energies = trace.filter(pl.col("accepted"))["energy"].to_list()
    assert energies[0] == result.energy_initial and energies[-1] == result.energy
    for before, after in itertools.pairwise(energies):
        assert after <= before, f"the energy rose from {before!r} to {after!r}"
    assert result.energy <= result.energy_initial
    # no_descent only where the second-order test found negative curvature on the free face
    # that no feasible move could use (a corner whose feasible cone is copositive): the cheap
    # test cannot call that a minimum, and no step lowered F
    stopped_at_saddle = (result.reason is StopReason.NO_DESCENT and result.second_order is not None
                         and not result.second_order.passed)
    assert stopped_at_saddle or result.reason in (StopReason.CONVERGED, StopReason.STALLED,
                                                  StopReason.MAX_STEPS)
    steps = trace["step_size"].to_list()[1:]
    if gb.L > 0:
        assert all(t == 1.0 / gb.L for t in steps)
        assert all(m == pytest.approx(1.0 / gb.L) for m in trace["margin"].to_list()[1:])
    assert np.all(result.x >= problem.lower) and np.all(result.x <= problem.upper)
    assert problem.evaluate(result.x).energy == pytest.approx(result.energy, rel=1e-12, abs=1e-12)


def fd_hessian(problem, x: np.ndarray, h: float = 1e-6) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Central differences of the compiled gradient, symmetrised."""
    n = x.size
    cols = []
    for j in range(n):
        e = np.zeros(n)
        e[j] = h
        cols.append((problem.energy_and_grad(x + e)[2] - problem.energy_and_grad(x - e)[2])
                    / (2 * h))
    m = np.array(cols).T
    return (m + m.T) / 2


def assert_l_bounds_the_hessian(problem, L: float, rng: np.random.Generator,  # type: ignore[no-untyped-def]
                                points: int = 3) -> float:
    lo, hi = problem.lower, problem.upper
    worst = 0.0
    for _ in range(points):
        x = lo + 2e-6 + (hi - lo - 4e-6) * rng.uniform(0, 1, lo.size)
        x = np.where(hi - lo > 4e-6, x, (lo + hi) / 2)  # FD points stay in the box
        rho = float(np.max(np.abs(np.linalg.eigvalsh(fd_hessian(problem, x)))))
        assert rho <= L * (1 + 1e-6) + 1e-5, (rho, L)
        worst = max(worst, rho)
    return worst


@settings(max_examples=15, deadline=None)
@given(random_models(), st.integers(0, 2**32 - 1))
def test_gershgorin_l_bounds_the_spectral_radius(case, seed: int) -> None:  # type: ignore[no-untyped-def]
    n, data, weights, params = case
    hi = params["lo"] + max(params["hi"] - params["lo"], 1e-3)
    problem = bind_random((n, data, weights, {"lo": params["lo"], "hi": hi}))
    gb = global_lipschitz(problem, refine=False)
    assert_l_bounds_the_hessian(problem, gb.L, np.random.default_rng(seed))
    # the refined (polynomial) L is still a bound, and no looser
    refined = global_lipschitz(problem, refine=True)
    assert refined.L <= gb.L and refined.source in ("c", "c+polynomial")
    assert_l_bounds_the_hessian(problem, refined.L, np.random.default_rng(seed), points=1)


def example_problem(name: str, backend: str = "c"):  # type: ignore[no-untyped-def]
    data = {"shortcuts": EXAMPLES / "grid_shortcuts.npy"} if name == "grid_percolation" else None
    return cfc.load(str(EXAMPLES / f"{name}.cfc")).compile(backend=backend).bind(data=data)


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.cfc")))
def test_examples_l_bounds_the_true_hessian(name: str) -> None:
    problem = example_problem(name)
    gb = global_lipschitz(problem, refine=False)
    assert gb.finite, gb.offending
    shares = sum(f.share for f in gb.families)
    assert shares == pytest.approx(gb.L, rel=1e-12)
    assert max(f.max_row for f in gb.families) <= gb.L * (1 + 1e-12)
    rho = assert_l_bounds_the_hessian(problem, gb.L, np.random.default_rng(1), points=2)
    assert rho > 0
    if problem.bound.n <= 64:  # the Python backend agrees (its polynomial entries are exact)
        py = global_lipschitz(example_problem(name, "python"))
        assert py.source == "python" and py.L <= gb.L * (1 + 1e-9)
        assert py.L >= rho * (1 - 1e-6)


def test_baseline_l_by_hand() -> None:
    """seed_baseline: gate gets |2a + 12b gate^2| <= 0.5 + 4.2 from gate_local and
    2|w| + 2|w| = 2.8 from couple: L = 7.5 at 'gate'."""
    gb = global_lipschitz(example_problem("seed_baseline"), refine=False)
    assert gb.L == pytest.approx(7.5, rel=1e-10) and gb.variable == "gate"
    report = lipschitz_report(example_problem("seed_baseline"), refine=False)
    assert report["L"] == pytest.approx(7.5, rel=1e-10)
    fams = report["families"]
    assert fams["gate_local"]["share"] == pytest.approx(4.7, rel=1e-10)
    assert fams["couple"]["share"] == pytest.approx(2.8, rel=1e-10)
    assert fams["seq_local"] == {"share": 0.0, "max_row": pytest.approx(4.0, rel=1e-10),
                                 "lipschitz": True, "reason": ""}


# ---------------------------------------------------------------- (c) refusal
HINGE = textwrap.dedent("""\
    model hinge
    var x[4] in [0, 1] = 0.2
    factor local[i in 0..4] = landau(x[i]; a = -0.5, b = 1.0)
    factor margin[i in 0..3] = margin_hinge(x[i], x[i+1]; w = 1.5, m = 0.25)
""")


@pytest.mark.parametrize("backend", ["c", "python"])
def test_certified_refuses_a_non_lipschitz_model(tmp_path: Path, backend: str) -> None:
    path = tmp_path / "hinge.cfc"
    path.write_text(HINGE)
    out = run_cfc("run", str(path), "--solver", "certified", "--backend", backend)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.splitlines()
    assert lines[0].startswith(f"{path}:4:28: error: solver 'certified' needs a gradient")
    assert "factor 'margin' at i = 0 (energy margin_hinge)" in lines[0]
    assert "relu(abs(x - y) - m) has a kink where abs(x - y) = m" in lines[0]
    assert lines[1] == " 4 | factor margin[i in 0..3] = margin_hinge(x[i], x[i+1]; w = 1.5, m = 0.25)"
    assert lines[2] == "   |                            " + "^" * 45
    assert lines[3] == ("hint: use '--solver auto' (the default) or '--solver pgd': neither "
                        "needs a Lipschitz constant")
    # the default relaxes it, and run --json says why there is no L
    out = run_cfc("run", str(path), "--json", "--backend", backend)
    assert out.returncode == 0, out.stderr
    lip = json.loads(out.stdout)["lipschitz"]
    assert lip["L"] is None
    assert lip["families"]["margin"]["lipschitz"] is False
    assert lip["families"]["margin"]["share"] is None
    assert "kink" in lip["families"]["margin"]["reason"]
    assert lip["families"]["local"]["lipschitz"] is True


def test_a_kink_outside_the_box_is_fine() -> None:
    """margin_hinge with |x - y| <= 0.5 < m: the kink is never reached, the bound is 0."""
    text = HINGE.replace("in [0, 1]", "in [0, 0.5]").replace("m = 0.25", "m = 0.75")
    problem = cfc.loads(text, "hinge.cfc").compile(backend="c").bind()
    gb = global_lipschitz(problem, refine=False)
    assert gb.finite and gb.offending is None
    b, _ = instance_bounds(problem, 1)
    assert np.all(b <= 1e-299)
    assert problem.relax("certified").energy <= problem.relax("certified", max_steps=0).energy


# ---------------------------------------------------------------- (d) pgd with L, the CLI
def test_pgd_with_l_caps_its_steps_and_traces_the_margin() -> None:
    problem = example_problem("sequence_redemption")
    L = global_lipschitz(problem, refine=False).L
    relaxation = problem.relax("pgd", lipschitz_cap=True)
    trace = relaxation.trace
    assert "margin" in trace.columns
    assert trace["margin"].min() >= 0.0
    assert trace["step_size"].max() <= 2.0 / L
    assert trace["margin"][0] == pytest.approx(2.0 / L)
    plain = problem.relax("pgd").trace
    assert "margin" not in plain.columns  # no L unless asked: BB steps stay uncapped


def test_run_json_and_trace_of_certified(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    out = run_cfc("run", str(EXAMPLES / "seed_baseline.cfc"), "--solver", "certified",
                  "--json", "--trace", str(trace))
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    for key in ("model", "energy", "energy_initial", "families", "steps", "converged",
                "reason", "delta_f90", "x", "compile"):
        assert key in payload
    lip = payload["lipschitz"]
    assert lip["L"] == pytest.approx(7.5, rel=1e-10)
    assert set(lip["families"]) == {"seq_local", "gate_local", "couple", "benefit"}
    assert all(set(f) == {"share", "max_row", "lipschitz", "reason"}
               for f in lip["families"].values())
    frame = pl.read_csv(trace)
    assert frame["margin"].min() > 0
    assert frame["energy"].diff().drop_nulls().max() <= 0
    assert frame["step_size"][1] == pytest.approx(1 / 7.5, rel=1e-10)
    assert payload["energy"] == pytest.approx(-0.0025076, abs=1e-7)
    text = run_cfc("run", str(EXAMPLES / "seed_baseline.cfc"), "--solver", "certified")
    assert "  L       7.5 (Gershgorin), step 1/L = 0.133333" in text.stdout


_CERTIFIED_HIT = textwrap.dedent("""
    import io, json, sys
    from contextlib import redirect_stdout
    from cfc_dsl.cli.main import main
    out = io.StringIO()
    with redirect_stdout(out):
        rc = main(["run", "examples/chain.cfc", "--solver", "certified", "--json"])
    assert rc == 0, rc
    payload = json.loads(out.getvalue())
    assert payload["compile"]["cache"] == "hit", payload["compile"]
    assert not [m for m in sys.modules if m.split(".")[0] == "sympy"], "sympy was imported"
    print("ok", payload["lipschitz"]["L"])
""")


def test_certified_on_a_cache_hit_needs_no_sympy() -> None:
    example_problem("chain")  # warm the cache
    out = subprocess.run([sys.executable, "-c", _CERTIFIED_HIT], capture_output=True, text=True,
                         cwd=ROOT, env=dict(os.environ), timeout=300)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.split()[1]) == pytest.approx(
        global_lipschitz(example_problem("chain"), refine=False).L)
