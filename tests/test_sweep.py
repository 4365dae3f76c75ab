"""Sweeps: rows equal serial in-process relaxations, on a LocalCluster and on a scheduler
started on the loopback address; resume, failed points, Ctrl-C, {seed} data and grid syntax."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

import cfc_dsl as cfc
from cfc_dsl.runtime.sweep.engine import SweepInterrupted, make, run
from cfc_dsl.runtime.sweep.grid import Axis, parse_seeds
from conftest import EXAMPLES, run_cfc

CHAIN = EXAMPLES / "chain.cfc"
GRID = {"a": "-1:1:3", "N": [6, 12]}


def expected_rows(path: Path = CHAIN, grid: dict[str, list[float]] | None = None,
                  seeds: tuple[int, ...] = (0, 1)) -> list[dict[str, object]]:
    """The independent oracle: each point bound and relaxed in this process, no sweep code."""
    grid = grid or {"a": [-1.0, 0.0, 1.0], "N": [6.0, 12.0]}
    compiled = cfc.load(path).compile()
    rows = []
    for a in grid["a"]:
        for n in grid["N"]:
            for seed in seeds:
                r = compiled.bind(sizes={"N": int(n)}, params={"a": a}).relax()
                rows.append({"a": a, "N": n, "seed": seed, "energy": r.energy,
                             "steps": r.steps, "reason": r.reason, "delta_f90": r.delta_f90,
                             **{f"family.{k}": v for k, v in r.families.items()},
                             "eta:mean": float(np.mean(r.values["eta"]))})
    return rows


def assert_rows_match(df: pl.DataFrame, rows: list[dict[str, object]]) -> None:
    assert len(df) == len(rows)
    got = df.drop("wall_s").to_dicts()
    for have, want in zip(got, rows, strict=True):
        assert have["error"] is None
        assert {k: have[k] for k in want} == want


def test_serial_sweep_equals_in_process_relaxations(tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    df = cfc.sweep(CHAIN, GRID, seeds=2, observe=["eta:mean"], workers=0, output=out)
    assert_rows_match(df, expected_rows())
    assert pl.read_parquet(out).drop("wall_s").equals(df.drop("wall_s"))
    meta = json.loads(pq.read_schema(out).metadata[b"cfc.sweep"])
    assert meta["grid"] == {"a": [-1.0, 0.0, 1.0], "N": [6.0, 12.0]} and meta["seeds"] == [0, 1]
    assert meta["cfc_version"] == cfc.__version__ and len(meta["source_sha256"]) == 64


def test_local_cluster_rows_equal_serial_runs(tmp_path: Path) -> None:
    df = cfc.sweep(CHAIN, GRID, seeds=2, observe=["eta:mean"], workers=2)
    assert_rows_match(df, expected_rows())


def test_scheduler_on_loopback_rows_equal_serial_runs(tmp_path: Path) -> None:
    from dask.distributed import LocalCluster

    out = tmp_path / "s.parquet"
    with LocalCluster(host="127.0.0.1", n_workers=1, processes=True, threads_per_worker=1,
                      dashboard_address=None) as cluster:
        done = run_cfc("sweep", str(CHAIN), "--grid", "a=-1:1:3", "--grid", "N=6,12",
                       "--seeds", "2", "--observe", "eta:mean", "--scheduler",
                       cluster.scheduler_address, "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "12 rows" in done.stdout
    assert_rows_match(pl.read_parquet(out), expected_rows())


def test_resume_skips_finished_points(tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    model = cfc.load(CHAIN)
    first = run(make(model, {"a": "-1:1:3", "N": [6]}, (0,)), workers=0, output=out)
    seen: list[int] = []
    spec = make(model, {"a": "-1:1:3", "N": [6]}, (0, 1))
    again = run(spec, workers=0, output=out, resume=True,
                progress=lambda done, total, failed: seen.append(total))
    assert set(seen) == {3}  # only the three seed-1 points ran
    assert len(again) == 6
    assert again.filter(pl.col("seed") == 0).drop("wall_s").equals(first.drop("wall_s"))
    other = cfc.loads(CHAIN.read_text() + "\nweight link = 0.5\n", str(CHAIN))
    with pytest.raises(cfc.CfcError, match="another model source"):
        run(make(other, {"a": [0.0]}, (0,)), workers=0, output=out, resume=True)


def test_a_failing_point_gets_an_error_row(tmp_path: Path) -> None:
    df = cfc.sweep(CHAIN, {"N": [-1, 6]}, seeds=1, workers=0)
    bad, good = df.row(0, named=True), df.row(1, named=True)
    assert bad["N"] == -1 and bad["energy"] is None
    assert "size 'N' must be a whole number >= 0, got -1" in bad["error"]
    assert "hint:" in bad["error"]  # the full message, with its hint
    assert good["error"] is None and good["energy"] is not None


def test_ctrl_c_keeps_finished_rows(tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"

    def interrupt(done: int, total: int, failed: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(SweepInterrupted) as stop:
        run(make(cfc.load(CHAIN), {"a": "-1:1:5"}, (0,)), workers=0, output=out,
            progress=interrupt)
    assert len(stop.value.frame) == 2 and len(pl.read_parquet(out)) == 2


SEEDED = """model seeded
size N = 5
param a = -0.5
data eta0[N]
var eta[N] in [0, 1] = 0.1
init eta[i in 0..N] = eta0[i]
factor local[i in 0..N] = landau(eta[i]; a = a, b = 1.0)
factor link[i in 0..N-1] = quadratic(eta[i], eta[i+1]; w = 0.2)
"""


def test_seed_substitutes_into_data_paths(tmp_path: Path) -> None:
    model = tmp_path / "seeded.cfc"
    model.write_text(SEEDED)
    for seed in (0, 1):
        np.save(tmp_path / f"eta0_{seed}.npy", np.random.default_rng(seed).uniform(0, 1, 5))
    df = cfc.sweep(model, {"a": [0.2]}, seeds=3, workers=0,
                   data={"eta0": str(tmp_path / "eta0_{seed}.npy")}, max_steps=3)
    compiled = cfc.load(model).compile()
    for seed in (0, 1):
        r = compiled.bind(params={"a": 0.2},
                          data={"eta0": tmp_path / f"eta0_{seed}.npy"}).relax(max_steps=3)
        assert df.row(seed, named=True)["energy"] == r.energy
    assert df["energy"][0] != df["energy"][1]
    assert "eta0_2.npy' for 'eta0' does not exist" in df["error"][2]  # seed 2 has no file


def test_grid_syntax_errors_point_into_the_flag() -> None:
    with pytest.raises(cfc.CfcError) as err:
        Axis.parse("a=-1:one:21")
    text = str(err.value)
    assert "'one' is not a finite number" in text
    assert "--grid a=-1:one:21" in text and "\n   |             ^^^" in text
    with pytest.raises(cfc.CfcError, match="is not NAME="):
        Axis.parse("a")
    with pytest.raises(cfc.CfcError, match="not a count of values"):
        Axis.parse("a=0:1:0")
    assert Axis.parse("N=64,256").values == (64.0, 256.0)
    assert Axis.parse("a=-1:1:21").values == tuple(np.linspace(-1, 1, 21))
    assert parse_seeds("3") == (0, 1, 2) and parse_seeds("4,9") == (4, 9)
    with pytest.raises(cfc.CfcError, match="not a seed"):
        parse_seeds("x")


def test_cli_rejects_unknown_names_before_running(tmp_path: Path) -> None:
    done = run_cfc("sweep", str(CHAIN), "--grid", "b=1,2", "-o", str(tmp_path / "s.parquet"))
    assert done.returncode == 2
    assert "'b' cannot be swept" in done.stderr and "^" in done.stderr
    assert not (tmp_path / "s.parquet").exists()
