"""The example scripts: they run, and what they show holds."""

from __future__ import annotations

import sys

import numpy as np

from conftest import EXAMPLES


def test_gate_sweep_opens_the_gate_with_the_benefit() -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import gate_sweep
    finally:
        sys.path.remove(str(EXAMPLES))
    rows = gate_sweep.sweep((0.0, 0.1, 0.3, 0.8))
    gate = np.array([r["gate"] for r in rows])
    eta_d = np.array([r["eta_D"] for r in rows])
    energy = np.array([r["energy"] for r in rows])
    assert gate[0] < 1e-6  # no benefit: the gate stays shut
    assert np.all(np.diff(gate) > 0) and np.all(np.diff(eta_d) > 0)  # opening redeems D
    assert np.all(np.diff(energy) < 0)  # a larger benefit only lowers the minimum
