"""The projected-gradient solver: monotone descent, known minima, ΔF90, stop reasons,
non-finite energies, trace files and the accuracy of the kernels' summation."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cfc_dsl as cfc
from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.runtime.observe.trace import BASE_COLUMNS, Trace, delta_f90
from cfc_dsl.runtime.solvers.base import StopReason
from conftest import EXAMPLES, run_cfc

# ------------------------------------------------------------------ (a) monotone descent
# family -> (energy, arity, parameter samplers); unary families act on every variable,
# binary ones on every edge. Parameters come from data columns, so one compile serves all.
PROPERTY_FAMILIES: dict[str, tuple[str, int, dict[str, tuple[float, float]]]] = {
    "landau": ("landau", 1, {"a": (-1.0, 1.0), "b": (-0.5, 1.0), "h": (-0.5, 0.5)}),
    "order": ("order", 1, {"a": (0.0, 2.0), "b": (0.0, 1.0)}),
    "gate_local": ("gate_local", 1, {"a": (0.0, 0.5), "b": (0.0, 0.5)}),
    "compression": ("compression", 1, {"a": (0.0, 2.0), "b": (0.0, 1.0), "t": (-0.5, 1.5)}),
    "gate_benefit": ("gate_benefit", 1, {"w": (0.0, 2.0), "delta": (-0.5, 0.5)}),
    "damped_gate_benefit": ("damped_gate_benefit", 1,
                            {"w": (0.0, 2.0), "delta": (-0.5, 0.5), "damping": (0.0, 1.0),
                             "p": (1.0, 2.0), "pos": (0.0, 2.0), "neg": (0.0, 2.0)}),
    "quadratic": ("quadratic", 2, {"w": (0.0, 2.0)}),
    "directed_hinge": ("directed_hinge", 2, {"w": (0.0, 2.0)}),
    "asym_hinge": ("asym_hinge", 2, {"w": (0.0, 2.0), "alpha": (0.2, 2.0), "beta": (0.2, 2.0)}),
    "margin_hinge": ("margin_hinge", 2, {"w": (0.0, 1.0), "m": (0.01, 0.5)}),
}


def property_source() -> str:
    lines = ["model solver_property", "size N = 4", "data edges[M, 2] : int", "data x0[N]",
             "var eta[N] in [0, 1]", "init eta[i in 0..N] = x0[i]"]
    for fam, (energy, arity, params) in PROPERTY_FAMILIES.items():
        if arity == 1:
            lines.append(f"data p_{fam}[N, {len(params)}]")
            args = ", ".join(f"{p} = p_{fam}[i, {k}]" for k, p in enumerate(params))
            lines.append(f"factor {fam}[i in 0..N] = {energy}(eta[i]; {args})")
        else:
            lines.append(f"data p_{fam}[M, {len(params)}]")
            args = ", ".join(f"{p} = p_{fam}[e, {k}]" for k, p in enumerate(params))
            lines.append(f"factor {fam}[e in 0..M] = "
                         f"{energy}(eta[edges[e, 0]], eta[edges[e, 1]]; {args})")
    return "\n".join(lines) + "\n"


@functools.cache
def property_compiled():  # type: ignore[no-untyped-def]
    """Compiled once per session (a plain function keeps hypothesis' reports short)."""
    return cfc.loads(property_source(), "solver_property.cfc").compile(backend="c")


@st.composite
def random_problems(draw):  # type: ignore[no-untyped-def]
    n = draw(st.integers(2, 12))
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    edges = draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=3 * n))
    present = draw(st.sets(st.sampled_from(sorted(PROPERTY_FAMILIES)), min_size=1))
    weights = {fam: (draw(st.floats(0.1, 3.0)) if fam in present else 0.0)
               for fam in PROPERTY_FAMILIES}
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    data = {"edges": np.array(edges, dtype=np.int64), "x0": rng.uniform(0.0, 1.0, n)}
    for fam, (_, arity, params) in PROPERTY_FAMILIES.items():
        rows = n if arity == 1 else len(edges)
        data[f"p_{fam}"] = np.column_stack([rng.uniform(lo, hi, rows)
                                            for lo, hi in params.values()])
    return n, data, weights


@settings(max_examples=40, deadline=None)
@given(random_problems())
def test_relaxation_never_increases_the_energy(case) -> None:  # type: ignore[no-untyped-def]
    n, data, weights = case
    problem = property_compiled().bind(sizes={"N": n}, data=data, weights=weights)
    result = problem.relax(max_steps=200)
    trace = result.trace
    assert trace.columns[:6] == list(BASE_COLUMNS)
    energies = trace.filter(pl.col("accepted"))["energy"].to_list()
    assert energies[0] == result.energy_initial
    assert energies[-1] == result.energy
    for before, after in itertools.pairwise(energies):
        assert after <= before, f"the energy rose from {before!r} to {after!r}"
    assert result.energy <= result.energy_initial
    assert isinstance(result.result.reason, StopReason)
    assert result.reason in {r.value for r in StopReason}
    assert 0 <= result.steps <= 200
    assert trace.height == result.steps + 1
    assert np.all(result.x >= problem.lower) and np.all(result.x <= problem.upper)
    # the reported energy is the energy of the reported state
    assert problem.evaluate(result.x).energy == pytest.approx(result.energy, rel=1e-12, abs=1e-12)


class _EnergyOnlyDisagrees:
    """F = 10 (x - 1)^2 on [0, 2], whose energy-only path under-reports by a wide margin."""

    lower = np.array([0.0])
    upper = np.array([2.0])
    family_names = ("f",)

    def energy_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        f = float(10.0 * (x[0] - 1.0) ** 2)
        return f, np.array([f]), np.array([20.0 * (x[0] - 1.0)])

    def energy(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        f = self.energy_and_grad(x)[0] - 1e6
        return f, np.array([f])

    def check_finite(self, x: np.ndarray, energy: float, grad: np.ndarray | None,
                     step: int) -> None:
        assert np.isfinite(energy)


def test_pgd_accepts_only_on_the_energy_it_records() -> None:
    """Armijo must hold for the energy the trace records (from the energy-and-gradient
    evaluation), not only for the energy-only evaluation: kernels may round differently."""
    from cfc_dsl.runtime.solvers.pgd import PgdOptions, ProjectedGradient

    result = ProjectedGradient().solve(_EnergyOnlyDisagrees(), np.array([0.9]),
                                       PgdOptions(max_steps=50))
    energies = result.trace.energies
    for before, after in itertools.pairwise(energies):
        assert after <= before, f"the energy rose from {before!r} to {after!r}"
    assert result.energy < 1e-12
    assert result.x[0] == pytest.approx(1.0, abs=1e-6)


# ------------------------------------------------------------------ (b) known minima
LANDAU = """model one_landau
param a = -0.5
param b = 1.0
var x in [0, 2] = 1.5
factor f = landau(x; a = a, b = b)
"""


@pytest.mark.parametrize("a, b", [(-0.5, 1.0), (-0.3, 0.7), (-1.2, 0.4)])
def test_single_landau_reaches_its_minimum(a: float, b: float) -> None:
    problem = cfc.loads(LANDAU, "one_landau.cfc").compile(backend="c").bind(params={"a": a, "b": b})
    result = problem.relax()
    assert result.converged
    assert float(result.values["x"]) == pytest.approx(math.sqrt(-a / (2 * b)), abs=1e-6)
    assert result.energy == pytest.approx(-a * a / (4 * b), abs=1e-9)


def test_seed_baseline_minimum() -> None:
    problem = cfc.load(str(EXAMPLES / "seed_baseline.cfc")).compile(backend="c").bind()
    assert problem.evaluate().energy == pytest.approx(0.2131, abs=1e-4)
    result = problem.relax()
    assert result.energy_initial == pytest.approx(0.2131, abs=1e-4)
    assert result.energy == pytest.approx(-0.0025076, abs=1e-6)
    assert result.reason in ("converged", "stalled")
    assert float(result.values["seq"]) == pytest.approx(0.0604, abs=1e-3)
    assert float(result.values["gate"]) == pytest.approx(0.0778, abs=1e-3)


def test_seed_dense_minimum() -> None:
    problem = cfc.load(str(EXAMPLES / "seed_dense.cfc")).compile(backend="c").bind()
    result = problem.relax()
    assert result.energy == pytest.approx(-0.010651, abs=1e-6)
    assert result.reason in ("converged", "stalled")
    np.testing.assert_allclose(result.values["eta"], 0.0665, atol=1e-3)


# ------------------------------------------------------------------ (c) ΔF90
def reference_delta_f90(energies: list[float]) -> int:
    """DESIGN §5, literally: accepted steps until F0 - F_t >= 0.9 (F0 - F_final)."""
    f0, final = energies[0], energies[-1]
    return next(t for t, f in enumerate(energies) if f0 - f >= 0.9 * (f0 - final))


@pytest.mark.parametrize("energies, expected", [
    ([10.0, 5.0, 2.0, 1.05, 1.0], 3),  # need F <= 1.9: the fourth state (step 3)
    ([10.0, 1.5, 1.0], 1),  # 8.5 >= 8.1 at step 1
    ([4.0, 3.0, 2.0, 1.0, 0.0], 4),  # linear descent: 90 % only at the end
    ([1.0, 0.0, 0.0, 0.0], 1),  # the whole drop in the first step
    ([10.0, 2.0, 1.0, 0.0], 2),  # 9 >= 0.9 * 10 = 9 counts (equality reaches the threshold)
    ([5.0], 0),  # only the initial state
    ([5.0, 5.0, 5.0], 0),  # no drop at all
    ([0.0, -1.0, -2.0, -10.0], 3),  # negative energies
])
def test_delta_f90_by_hand(energies: list[float], expected: int) -> None:
    assert delta_f90(energies) == expected
    if len(energies) > 1 and energies[0] > energies[-1]:
        assert reference_delta_f90(energies) == expected


def test_delta_f90_of_a_relaxation() -> None:
    problem = cfc.load(str(EXAMPLES / "seed_dense.cfc")).compile(backend="c").bind()
    result = problem.relax()
    frame = result.trace
    energies = frame.filter(pl.col("accepted"))["energy"].to_list()
    assert len(energies) == result.steps + 1
    expected = reference_delta_f90(energies)
    assert result.delta_f90 == expected
    assert 0 < result.delta_f90 <= result.steps
    # and by the definition once more: the state before it had not yet dropped 90 %
    f0, final = energies[0], energies[-1]
    assert f0 - energies[expected - 1] < 0.9 * (f0 - final) <= f0 - energies[expected]


# ------------------------------------------------------------------ (d) stop reasons
def test_max_steps_reason() -> None:
    problem = cfc.load(str(EXAMPLES / "seed_dense.cfc")).compile(backend="c").bind()
    result = problem.relax(max_steps=2)
    assert result.reason == "max_steps"
    assert result.steps == 2
    assert not result.converged
    assert result.trace.height == 3
    assert result.energy < result.energy_initial


def test_converged_start_takes_no_step() -> None:
    compiled = cfc.loads(LANDAU, "one_landau.cfc").compile(backend="c")
    problem = compiled.bind(params={"a": -0.5, "b": 1.0}, init={"x": 0.5})  # grad = -1 + 1 = 0
    assert problem.evaluate().grad[0] == 0.0
    result = problem.relax()
    assert result.reason == "converged"
    assert result.converged
    assert result.steps == 0
    assert result.trace.height == 1
    assert result.delta_f90 == 0
    assert result.energy == result.energy_initial


def test_converged_at_an_active_bound() -> None:
    source = "model gate_open\nvar g in [0, 1] = 1\nfactor open = gate_benefit(g; w = 1, delta = 0.3)\n"
    result = cfc.loads(source, "gate_open.cfc").compile(backend="c").bind().relax()
    assert result.reason == "converged"
    assert result.steps == 0
    assert float(result.values["g"]) == 1.0


# ------------------------------------------------------------------ (e) NaN / Inf
LOG_MODEL = """model log_domain
size N = 3
var x[N] in [0, 1] = 0.5
energy e(x) = log(x)
factor bad[i in 0..N] = e(x[i])
"""


@pytest.mark.parametrize("backend", ["c", "python"])
def test_log_of_zero_names_family_and_instance(backend: str) -> None:
    compiled = cfc.loads(LOG_MODEL, "log_domain.cfc").compile(backend=backend)
    problem = compiled.bind(init={"x": [0.5, 0.0, 0.5]})
    for action in (problem.relax, problem.evaluate):
        with pytest.raises(CfcError) as info:
            action()
        err = info.value
        assert err.kind is ErrorKind.NUMERIC
        assert err.exit_code == 2
        assert "'bad'" in err.message
        assert "i = 1" in err.message
        assert "x[1]" in err.message


def test_cli_run_of_a_nan_model_exits_2(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "nan_model.cfc"
    path.write_text("model nan_model\nvar x in [0, 1] = 0\nenergy e(x) = log(x)\n"
                    "factor bad = e(x)\n")
    proc = run_cfc("run", str(path))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "bad" in proc.stderr
    assert "nan_model.cfc:4" in proc.stderr
    assert proc.stdout == ""


# ------------------------------------------------------------------ (f) trace files
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_trace_written_and_read_back(tmp_path, suffix: str) -> None:  # type: ignore[no-untyped-def]
    problem = cfc.load(str(EXAMPLES / "seed_baseline.cfc")).compile(backend="c").bind()
    relaxation = problem.relax()
    path = tmp_path / f"trace{suffix}"
    relaxation.result.trace.write(path)
    frame = pl.read_csv(path) if suffix == ".csv" else pl.read_parquet(path)
    expected = ["step", "energy", "grad_norm", "step_size", "backtracks", "accepted",
                "energy_seq_local", "energy_gate_local", "energy_couple", "energy_benefit"]
    assert frame.columns[:len(expected)] == expected
    assert frame.height == relaxation.steps + 1
    assert frame["step"].to_list() == list(range(relaxation.steps + 1))
    assert frame["energy"][0] == pytest.approx(relaxation.energy_initial, rel=1e-15)
    assert frame["energy"][-1] == pytest.approx(relaxation.energy, rel=1e-15)
    families = frame.select([c for c in expected if c.startswith("energy_")]).sum_horizontal()
    np.testing.assert_allclose(families.to_numpy(), frame["energy"].to_numpy(), rtol=1e-12,
                               atol=1e-15)
    assert frame["accepted"].dtype == pl.Boolean
    assert frame["backtracks"].dtype == pl.Int64


def test_trace_refuses_an_unknown_suffix(tmp_path) -> None:  # type: ignore[no-untyped-def]
    trace = Trace(("f",))
    trace.add(0, 1.0, [1.0], 0.0, 0.0, 0, True)
    with pytest.raises(CfcError) as info:
        trace.write(tmp_path / "trace.txt")
    assert info.value.kind is ErrorKind.ARGUMENT


# ------------------------------------------------------------------ (g) summation accuracy
SUM_MODEL = """model one_landau
size N = 10
param a = -0.5
param b = 1.0
param h = 0.1
var x[N] in [0, 2] = 0.3
factor f[i in 0..N] = landau(x[i]; a = a, b = b, h = h)
"""


def test_summation_of_many_identical_terms() -> None:
    n = 200_000
    a, b, h, x = -0.5, 1.0, 0.1, 0.3
    problem = cfc.loads(SUM_MODEL, "sum_model.cfc").compile(backend="c").bind(sizes={"N": n})
    single = a * x**2 + b * x**4 - h * x
    exact = math.fsum([single] * n)
    energy, families = problem.energy(problem.bound.x0)
    assert energy == pytest.approx(exact, rel=1e-12, abs=0.0)
    assert families[0] == pytest.approx(exact, rel=1e-12, abs=0.0)
    # a naive running sum of the same terms is off by ~2.4e-12 relative: the kernel does better
    naive = 0.0
    for _ in range(n):
        naive += single
    assert abs(naive - exact) > 1e-12 * abs(exact)
    assert abs(energy - exact) < 0.1 * abs(naive - exact)
