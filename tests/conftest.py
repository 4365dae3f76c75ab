"""Shared test fixtures: an isolated kernel cache, the golden-file switch, example paths."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite golden files from the current output instead of comparing")


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test session compiles into its own cache, never the user's."""
    path = tmp_path_factory.mktemp("cfc-cache")
    os.environ["CFC_CACHE_DIR"] = str(path)
    return path


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def check_golden(path: Path, actual: str, update: bool) -> None:
    """Compare `actual` with the golden file at `path` (or rewrite it with --update-golden)."""
    if update or not path.exists():
        if not update:
            pytest.fail(f"golden file {path} is missing; run pytest --update-golden")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    expected = path.read_text()
    assert actual == expected, f"{path.name} differs from its golden file; if the change is " \
        "intended, run pytest --update-golden and review the diff"


def run_cfc(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `cfc` command line in a subprocess."""
    full_env = dict(os.environ)
    full_env.pop("CFC_DEBUG", None)
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", "cfc_dsl.cli.main", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd or ROOT, timeout=600)


# A user energy with every built-in function and the kinds of power the language has.
BUILTINS_ENERGY = """
energy builtins(u, v; p = 1.5, q = 3) =
    abs(u - v) + max(u, v) + min(u, v) + relu(u - 0.5)^2 + softplus(u - v) + sigmoid(v)
    + sqrt(u + 1) + exp(u) + log(v + 2) + tanh(u*v) + sin(u) + cos(v)
    + u^p + (v + 1)^q + u^3 + u^0.5 + v^-2 + hazard(u - v) + hazard(v, 4)
"""

# Every standard-library energy once, plus the user energy above (codegen and derive tests).
ALL_ENERGIES_MODEL = """
model all_energies
var x[3] in [0, 1] = 0.3
var y[3] in [0, 1] = 0.6
var g in [0, 1] = 0.5
""" + BUILTINS_ENERGY + """
factor f_landau[i in 0..3] = landau(x[i]; a = -0.5, b = 1.0, h = 0.1)
factor f_order[i in 0..3] = order(x[i])
factor f_gate_local[i in 0..3] = gate_local(y[i])
factor f_compression[i in 0..3] = compression(x[i]; a = 1, b = 0.5, t = 0.4)
factor f_quadratic[i in 0..3] = quadratic(x[i], y[i]; w = 0.7)
factor f_directed_hinge[i in 0..3] = directed_hinge(x[i], y[i])
factor f_asym_hinge[i in 0..3] = asym_hinge(x[i], y[i]; w = 2, alpha = 0.5, beta = 0.9)
factor f_margin_hinge[i in 0..3] = margin_hinge(x[i], y[i]; m = 0.1)
factor f_gate_benefit = gate_benefit(g; w = 1, delta = 0.2)
factor f_damped = damped_gate_benefit(g; delta = 0.3, p = 2)
factor f_builtins[i in 0..3] = builtins(x[i], y[i])
"""
