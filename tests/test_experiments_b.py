"""The research note's experiments 6.3-6.6 (examples/experiments/) in reduced size: each
`--quick` run in-process through its `main(argv)`, checked for its qualitative result, and
the source-cluster model checked against NetworkX's components on small grids."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import cfc_dsl as cfc
from cfc_dsl.runtime.observables.percolation import bond_grid, giant_component_membership

HERE = Path(__file__).resolve().parents[1] / "examples" / "experiments"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"experiment_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("n,p,frac,seed", [(6, 0.5, 0.0, 1), (8, 0.45, 0.0, 2),
                                           (8, 0.6, 0.1, 3), (10, 0.55, 0.05, 4)])
def test_source_cluster_order_is_networkx_membership(n, p, frac, seed):
    perc = _script("percolation_threshold")
    data, fraction = perc.setting_data(n, [p], frac, seed)
    compiled = cfc.load(str(perc.MODEL)).compile()
    c = 1 if frac else 0
    relaxed = compiled.bind(sizes={"L": n, "K": 0, "C": c}, data=data).relax(
        solver="newton", tol=1e-12)
    x = np.asarray(relaxed.values["x"]).ravel()
    member = giant_component_membership(bond_grid(n, p, frac, seed))
    assert np.abs(x - member).max() < 1e-3  # each cell's order is its membership
    assert abs(x.mean() - fraction[c, 0]) < 1e-4


def test_threshold_moves_down_with_shortcuts(tmp_path):
    report = _script("percolation_threshold").main(["--quick", "--workers", "0",
                                                    "--out", str(tmp_path)])
    assert report["without"] is not None and report["with"] is not None
    assert report["with"] < report["without"]
    assert report["with"] == report["with_networkx"]
    assert report["without"] == report["without_networkx"]
    assert report["max_abs_order_minus_fraction"] < 1e-3
    assert (tmp_path / "points.csv").exists() and (tmp_path / "threshold.png").exists()


def test_gate_opens_only_below_a_cost(tmp_path):
    table = _script("gated_expansion").main(["--quick", "--out", str(tmp_path)])
    rows = table.to_dicts()
    gain = rows[0]["gain_mean"]
    for row in rows:  # both gates open exactly when the cost is below what the repair pays
        below = row["cost"] < gain
        assert row["expansion_rate"] == (1.0 if below else 0.0)
        assert row["cfc_admission_rate"] == (1.0 if below else 0.0)
    assert [r["hazard_mean"] for r in rows] == sorted((r["hazard_mean"] for r in rows),
                                                      reverse=True)
    assert (tmp_path / "gate_metrics.png").exists()


def test_gating_hypothesis_gate_never_opens(tmp_path):
    report = _script("gating_hypothesis").main(["--quick", "--out", str(tmp_path)])
    assert report["opened"] == 0 and report["admitted"] == 0
    assert report["gate_final_max"] < 0.1
    # gate_local's slope at 0.5 is 2*0.2*0.5 + 4*0.3*0.125 = 0.35: the benefit must beat it
    assert report["w_delta_to_open"] == pytest.approx(0.35, abs=1e-6)
    assert report["w_delta_mean"] < report["w_delta_to_admit_at_cost"] < report["w_delta_to_open"]


def test_sequence_redemption_exact(tmp_path):
    report = _script("sequence_redemption").main(["--quick", "--out", str(tmp_path)])
    assert report["exact"]["mean"] > 0 and report["exact"]["negative_trials"] == 0
    assert report["gate_metrics_sequence_redemption_cfc"]["gates"] == 1
