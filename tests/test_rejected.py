"""Rejected trials in the trace for apg (FISTA backtracking and the monotone safeguard),
newton (trust-region trials) and cd (colour moves), as pgd reports them: asked for with
`Observe(rejected=True)` (`cfc run --trace-rejected`), each is a row with `accepted` false,
and the accepted rows are exactly the run without them. The oracle is that plain run."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import cfc_dsl as cfc
from cfc_dsl.runtime.observe.records import Observe

# Non-convex Landau wells, a chain and margin-hinge kinks: every solver here turns some
# trials down on the way (checked below, so the test cannot pass vacuously).
WIGGLE = """model wiggle
size N = 12
var eta[N] in [0, 1] = 0.5
init eta[i in 0..N] = 0.05 * (i % 7) + 0.3
factor local[i in 0..N] = landau(eta[i]; a = -1.0, b = 1.0, h = 0.05 * (i % 3))
factor link[i in 0..N-1] = quadratic(eta[i], eta[i+1]; w = 0.3)
factor kink[i in 0..N-2] = margin_hinge(eta[i], eta[i+2]; w = 0.4, m = 0.1)
"""


@pytest.fixture(scope="module")
def wiggle():  # type: ignore[no-untyped-def]
    return cfc.loads(WIGGLE, "wiggle.cfc").compile(backend="python").bind()


@pytest.mark.parametrize("solver", ["pgd", "apg", "newton", "cd"])
def test_rejected_rows_are_exactly_the_extra_rows(wiggle, solver: str) -> None:  # type: ignore[no-untyped-def]
    full = wiggle.relax(solver=solver, progress=Observe(rejected=True)).trace
    plain = wiggle.relax(solver=solver).trace
    assert plain["accepted"].all()  # not asked: no rejected rows
    rejected = full.filter(~pl.col("accepted"))
    assert rejected.height > 0
    accepted = full.filter(pl.col("accepted"))
    # the accepted rows are the plain run's rows: the same steps and the same energies
    assert accepted["step"].to_list() == plain["step"].to_list()
    np.testing.assert_array_equal(accepted["energy"].to_numpy(), plain["energy"].to_numpy())
    np.testing.assert_array_equal(accepted["backtracks"].to_numpy(),
                                  plain["backtracks"].to_numpy())
    energies = accepted["energy"].to_numpy()
    assert np.all(np.diff(energies) <= 0.0)  # accepted energies never rise
    # a rejected row is a trial of the step taken next: it repeats that step's number and
    # comes before the accepted row of that step
    steps, flags = full["step"].to_list(), full["accepted"].to_list()
    for k, (step, ok) in enumerate(zip(steps, flags, strict=True)):
        if not ok:
            assert step >= 1
            following = next((s for s, a in zip(steps[k:], flags[k:], strict=True) if a), None)
            assert following in (step, None)
    # each rejected trial's energy is finite and its family energies add up to it
    families = [c for c in full.columns if c.startswith("energy_")]
    total = rejected.select(pl.sum_horizontal(families)).to_series().to_numpy()
    np.testing.assert_allclose(total, rejected["energy"].to_numpy(), rtol=1e-12, atol=1e-12)


def test_cli_traces_rejected_colour_moves(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from cfc_dsl.cli.main import main

    model = tmp_path / "wiggle.cfc"
    model.write_text(WIGGLE)
    trace = tmp_path / "trace.csv"
    assert main(["run", str(model), "--backend", "python", "--solver", "cd", "--quiet",
                 "--trace", str(trace), "--trace-rejected"]) == 0
    frame = pl.read_csv(trace)
    assert (~frame["accepted"]).sum() > 0
    accepted = frame.filter(pl.col("accepted"))["energy"].to_numpy()
    assert np.all(np.diff(accepted) <= 0.0)
