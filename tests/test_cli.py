"""The `cfc` command line (DESIGN §4): JSON payloads, files it writes, exit codes."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

import cfc_dsl as cfc
from conftest import EXAMPLES, run_cfc

CHAIN = str(EXAMPLES / "chain.cfc")
RUN_KEYS = {"model", "energy", "energy_initial", "families", "steps", "converged", "reason",
            "delta_f90", "x", "compile"}
REASONS = {"converged", "stalled", "max_steps", "no_descent"}


def run_json(*args: str) -> dict:  # type: ignore[type-arg]
    proc = run_cfc(*args)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout)


def check_run_payload(payload: dict, model: str, families: list[str]) -> None:  # type: ignore[type-arg]
    assert RUN_KEYS <= set(payload), f"missing keys: {RUN_KEYS - set(payload)}"
    assert payload["model"] == model
    assert isinstance(payload["energy"], float)
    assert isinstance(payload["energy_initial"], float)
    assert payload["energy"] <= payload["energy_initial"]
    assert list(payload["families"]) == families
    assert sum(payload["families"].values()) == pytest.approx(payload["energy"], rel=1e-12,
                                                              abs=1e-12)
    assert isinstance(payload["steps"], int) and payload["steps"] >= 0
    assert isinstance(payload["converged"], bool)
    assert payload["reason"] in REASONS
    assert payload["converged"] == (payload["reason"] == "converged")
    assert isinstance(payload["delta_f90"], int) and 0 <= payload["delta_f90"] <= payload["steps"]
    assert isinstance(payload["x"], dict) and payload["x"]
    assert set(payload["compile"]) >= {"cache", "seconds"}
    assert payload["compile"]["cache"] in ("hit", "miss")
    assert isinstance(payload["compile"]["seconds"], float)
    assert payload["compile"]["seconds"] >= 0.0


def test_run_json_keys() -> None:
    payload = run_json("run", CHAIN, "--set", "N=10", "--set", "a=-0.3", "--json")
    check_run_payload(payload, "chain", ["local", "link"])
    eta = payload["x"]["eta"]
    assert isinstance(eta, list) and len(eta) == 10
    assert all(0.0 <= v <= 1.0 for v in eta)
    # landau(a = -0.3, b = 1) with equal neighbours: eta* = sqrt(0.15)
    assert payload["converged"]
    np.testing.assert_allclose(eta, np.sqrt(0.15), atol=1e-6)
    assert payload["energy"] == pytest.approx(10 * (-0.3 * 0.15 + 0.15**2), rel=1e-9)


def test_run_json_scalar_variables_and_a_step_limit() -> None:
    payload = run_json("run", str(EXAMPLES / "seed_baseline.cfc"), "--max-steps", "2", "--json")
    check_run_payload(payload, "seed_baseline", ["seq_local", "gate_local", "couple", "benefit"])
    assert payload["steps"] == 2
    assert payload["reason"] == "max_steps"
    assert payload["converged"] is False
    assert isinstance(payload["x"]["seq"], float) and isinstance(payload["x"]["gate"], float)


def test_run_init_and_weight_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    point = tmp_path / "start.json"
    point.write_text(json.dumps({"eta": [0.9, 0.8, 0.7, 0.6]}))
    payload = run_json("run", CHAIN, "--set", "N=4", "--set", "weight.link=2", "--init",
                       str(point), "--max-steps", "0", "--json")
    x = np.array([0.9, 0.8, 0.7, 0.6])
    local = float(np.sum(-0.5 * x**2 + x**4))
    link = 2 * 0.8 * float(np.sum(np.diff(x) ** 2))
    assert payload["energy_initial"] == pytest.approx(local + link, rel=1e-13)
    assert payload["families"]["link"] == pytest.approx(link, rel=1e-13)
    assert payload["steps"] == 0
    assert payload["x"]["eta"] == [0.9, 0.8, 0.7, 0.6]


def test_eval_json(tmp_path) -> None:  # type: ignore[no-untyped-def]
    values = [0.1, 0.3, 0.5, 0.7, 0.9, 0.2]
    point = tmp_path / "point.json"
    point.write_text(json.dumps({"eta": values}))
    payload = run_json("eval", CHAIN, "--at", str(point), "--set", "N=6", "--json")
    assert {"energy", "families", "grad"} <= set(payload)
    problem = cfc.load(CHAIN).compile(backend="python").bind(sizes={"N": 6})
    expected = problem.evaluate({"eta": values})
    assert payload["energy"] == pytest.approx(expected.energy, rel=1e-12)
    assert payload["families"] == pytest.approx(expected.families, rel=1e-12)
    assert list(payload["grad"]) == ["eta"]
    np.testing.assert_allclose(payload["grad"]["eta"], expected.grad, rtol=1e-12, atol=1e-15)


def test_eval_nested_point_of_a_2d_variable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    x = np.random.default_rng(3).uniform(0.0, 1.0, (4, 4))
    point = tmp_path / "grid.json"
    point.write_text(json.dumps({"x": x.tolist()}))
    shortcuts = tmp_path / "shortcuts.csv"  # flat cell pairs on a 4 x 4 grid
    shortcuts.write_text("a,b\n0,15\n3,12\n5,10\n")
    grid = str(EXAMPLES / "grid_percolation.cfc")
    payload = run_json("eval", grid, "--at", str(point), "--set", "L=4", "--data",
                       f"shortcuts={shortcuts}", "--json")
    grad = np.array(payload["grad"]["x"])
    assert grad.shape == (4, 4)
    problem = cfc.load(grid).compile(backend="python").bind(sizes={"L": 4},
                                                             data={"shortcuts": shortcuts})
    expected = problem.evaluate({"x": x})
    np.testing.assert_allclose(grad.ravel(), expected.grad, rtol=1e-12, atol=1e-15)
    assert payload["energy"] == pytest.approx(expected.energy, rel=1e-12)


@pytest.mark.parametrize("stage", ["ast", "model", "sympy", "ir", "c"])
def test_dump_stages(stage: str) -> None:
    proc = run_cfc("dump", str(EXAMPLES / "sequence_redemption.cfc"), "--stage", stage)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    marker = {"ast": "FactorDecl", "model": "factor redeem", "sympy": "asym_hinge",
              "ir": "kernel asym_hinge", "c": "cfc_eg_asym_hinge"}[stage]
    assert marker in proc.stdout


def test_run_writes_trace_and_result(tmp_path) -> None:  # type: ignore[no-untyped-def]
    trace, out = tmp_path / "t.csv", tmp_path / "sub" / "r.json"
    proc = run_cfc("run", str(EXAMPLES / "seed_dense.cfc"), "--trace", str(trace), "--out",
                   str(out))
    assert proc.returncode == 0, proc.stderr
    assert str(trace) in proc.stdout and str(out) in proc.stdout
    result = json.loads(out.read_text())
    check_run_payload(result, "seed_dense", ["local", "ring", "benefit", "second"])
    frame = pl.read_csv(trace)
    assert frame.columns[:6] == ["step", "energy", "grad_norm", "step_size", "backtracks",
                                 "accepted"]
    assert {"energy_local", "energy_ring", "energy_benefit", "energy_second"} <= set(frame.columns)
    assert frame.height == result["steps"] + 1
    assert frame["energy"][-1] == pytest.approx(result["energy"], rel=1e-15)
    assert frame["energy"][0] == pytest.approx(result["energy_initial"], rel=1e-15)


def test_run_writes_parquet_trace(tmp_path) -> None:  # type: ignore[no-untyped-def]
    trace = tmp_path / "t.parquet"
    payload = run_json("run", CHAIN, "--set", "N=8", "--trace", str(trace), "--json")
    frame = pl.read_parquet(trace)
    assert frame.height == payload["steps"] + 1
    assert "energy_local" in frame.columns and "energy_link" in frame.columns


EMIT = ["chain.c", "chain.h", "chain.ir.txt", "chain.sympy.txt"]


def test_compile_emits_files_and_protects_user_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "gen"
    out.mkdir()
    (out / "chain.c").write_text("/* my own code */\nint main(void) { return 0; }\n")
    proc = run_cfc("compile", CHAIN, "--out-dir", str(out), "--emit", "c,h,ir,sympy")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "chain.c" in proc.stderr and "--force" in proc.stderr
    assert (out / "chain.c").read_text().startswith("/* my own code */")

    proc = run_cfc("compile", CHAIN, "--out-dir", str(out), "--emit", "c,h,ir,sympy", "--force",
                   "--json")
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert sorted(p.split("/")[-1] for p in payload["files"]) == EMIT
    assert sorted(p.name for p in out.iterdir()) == EMIT
    assert payload["cache"] in ("hit", "miss")
    assert "cfc_eg_landau" in (out / "chain.c").read_text()
    assert "cfc_eg_quadratic" in (out / "chain.h").read_text()
    assert "kernel landau" in (out / "chain.ir.txt").read_text()
    assert "dE/dx" in (out / "chain.sympy.txt").read_text()


def test_compile_twice_into_the_same_out_dir(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from cfc_dsl.cli.main import (
        main,  # in-process: the same command line, without a new interpreter
    )

    args = ["compile", CHAIN, "--out-dir", str(tmp_path / "gen"), "--emit", "c,h,ir,sympy"]
    assert main(args) == 0
    assert main(args) == 0, capsys.readouterr().err


EXAMPLE_ARGS = {"grid_percolation": ["--data", f"shortcuts={EXAMPLES / 'grid_shortcuts.npy'}"]}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.cfc")), ids=lambda p: p.stem)
def test_every_example_runs(path) -> None:  # type: ignore[no-untyped-def]
    payload = run_json("run", str(path), *EXAMPLE_ARGS.get(path.stem, []), "--json")
    assert payload["model"] == path.stem
    assert RUN_KEYS <= set(payload)
    assert payload["energy"] <= payload["energy_initial"]
    assert payload["converged"], payload["reason"]


def test_lipschitz_cap_traces_a_nonnegative_margin(tmp_path) -> None:  # type: ignore[no-untyped-def]
    trace = tmp_path / "t.csv"
    # the cap is pgd's (and apg's) option; the default, auto, has none
    payload = run_json("run", str(EXAMPLES / "seed_baseline.cfc"), "--solver", "pgd",
                       "--lipschitz-cap", "--trace", str(trace), "--json")
    frame = pl.read_csv(trace)
    L = payload["lipschitz"]["L"]
    assert "margin" in frame.columns and L == pytest.approx(7.5)
    assert (frame["margin"] >= 0).all()
    assert (frame["step_size"] <= 2.0 / L + 1e-15).all()
    assert payload["energy"] == pytest.approx(-0.0025076, abs=1e-6)
