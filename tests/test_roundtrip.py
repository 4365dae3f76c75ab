"""Results round-trip: what `cfc run --out` writes goes back in as it is.

`eval --at`, `run --init` and `graph --solution` all take the result file; a plain number
for an array variable fills every element. Energies are checked against the run's own
report and, for constant points, against the formula worked out by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import EXAMPLES, run_cfc

CHAIN = str(EXAMPLES / "chain.cfc")
# a 2-d variable, a scalar and a variable named "x" (the key `run --out` keeps values under)
MIXED = """
size N = 3
var x in [-2, 2] = 0.3
var grid[2, N] in [-1, 1] = 0.2
factor pin = landau(x; a = -1, b = 1)
factor cell[i in 0..2, j in 0..N] = landau(grid[i, j]; a = -0.5, b = 1, h = 0.1 * j)
factor row[j in 0..N] = quadratic(grid[0, j], grid[1, j]; w = 0.7)
factor tie = quadratic(x, grid[1, 2]; w = 0.2)
"""


def _json(*args: str) -> dict:  # type: ignore[type-arg]
    proc = run_cfc(*args, "--backend", "python", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(params=["chain", "mixed"])
def model(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "chain":
        return CHAIN
    path = tmp_path / "mixed.cfc"
    path.write_text(MIXED)
    return str(path)


@pytest.fixture
def result(model: str, tmp_path: Path) -> tuple[Path, dict]:  # type: ignore[type-arg]
    out = tmp_path / "result.json"
    payload = _json("run", model, "--max-steps", "40", "--out", str(out))
    assert json.loads(out.read_text())["x"] == payload["x"]
    return out, payload


def test_eval_at_the_result_gives_its_energy(model: str, result: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    out, payload = result
    evaluated = _json("eval", model, "--at", str(out))
    assert evaluated["energy"] == payload["energy"]  # JSON floats round-trip exactly
    assert evaluated["families"] == payload["families"]


def test_run_from_the_result_stays_put(model: str, result: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    out, payload = result
    again = _json("run", model, "--init", str(out), "--max-steps", "40")
    assert again["energy_initial"] == payload["energy"]
    assert again["steps"] == 0 or again["energy"] == pytest.approx(payload["energy"], abs=1e-12)


def test_graph_takes_the_result(model: str, result: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    out, _ = result
    figure = tmp_path / "g.dot"
    proc = run_cfc("graph", model, "--solution", str(out), "-o", str(figure))
    assert proc.returncode == 0, proc.stderr
    assert "relaxed value" in figure.read_text()


def test_a_number_fills_an_array_variable(tmp_path: Path) -> None:
    # chain: 64 x landau(0.3; a = -0.5, b = 1) and no coupling between equal neighbours
    expected = 64 * (-0.5 * 0.3 ** 2 + 0.3 ** 4)
    scalar, listed = tmp_path / "scalar.json", tmp_path / "listed.json"
    scalar.write_text('{"eta": 0.3}')
    listed.write_text(json.dumps({"eta": [0.3] * 64}))
    assert _json("eval", CHAIN, "--at", str(scalar))["energy"] == pytest.approx(expected)
    assert _json("eval", CHAIN, "--at", str(listed))["energy"] == pytest.approx(expected)
    start = _json("run", CHAIN, "--init", str(scalar), "--max-steps", "0")
    assert start["energy_initial"] == pytest.approx(expected)
    assert start["x"]["eta"] == [0.3] * 64
    proc = run_cfc("graph", CHAIN, "--solution", str(scalar), "-o", str(tmp_path / "g.dot"))
    assert proc.returncode == 0, proc.stderr


def test_a_number_fills_a_2d_variable(tmp_path: Path) -> None:
    model = tmp_path / "mixed.cfc"
    model.write_text(MIXED)
    point = tmp_path / "p.json"
    point.write_text('{"x": 0.5, "grid": 0.25}')
    cell = sum(-0.5 * 0.25 ** 2 + 0.25 ** 4 - 0.1 * j * 0.25 for j in range(3)) * 2
    expected = (-0.25 + 0.0625) + cell + 0.2 * (0.5 - 0.25) ** 2
    assert _json("eval", str(model), "--at", str(point))["energy"] == pytest.approx(expected)


def test_a_result_file_with_a_wrong_shape_points_into_x(tmp_path: Path) -> None:
    bad = tmp_path / "r.json"
    bad.write_text('{"model": "chain", "families": {"eta": 1.0},\n "x": {"eta": [0.1, 0.2]}}')
    proc = run_cfc("eval", CHAIN, "--at", str(bad))
    assert proc.returncode == 2
    assert f"{bad}:2:8: error: 'eta' has shape [2]" in proc.stderr  # the key under "x"
