"""The trace's columns against values worked out by hand (NumPy formulas of the energies,
not the backend) on a single Landau term and a two-family chain; rejected trials; the
--trace-vars limit; the Tracker protocol; and the progress bar only on a terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import termios

import numpy as np
import polars as pl
import pytest

import cfc_dsl as cfc
from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.runtime.observe.records import (
    Observe,
    StepRecord,
    parse_trace_vars,
    variable_spans,
)
from cfc_dsl.runtime.observe.trace import BASE_COLUMNS
from cfc_dsl.runtime.solvers.base import Run, StopOptions
from conftest import ROOT

LANDAU = "model one\nvar x in [-2, 2] = 0.5\nfactor l = landau(x; a = -1, b = 1)\n"
CHAIN = """model chain
var eta[3] in [0, 1] = 0.3
factor local[i in 0..3] = landau(eta[i]; a = -0.5, b = 1.0)
factor link[i in 0..2] = quadratic(eta[i], eta[i+1]; w = 0.8)
weight link = 0.5
"""


def landau_f(x: float) -> float:
    return -x**2 + x**4


def landau_g(x: float) -> float:
    return -2 * x + 4 * x**3


def chain_parts(x: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(local energy, weighted link energy, local gradient, weighted link gradient)."""
    local = float(np.sum(-0.5 * x**2 + x**4))
    g_local = -1.0 * x + 4 * x**3
    d = x[:-1] - x[1:]
    link = 0.5 * 0.8 * float(np.sum(d**2))
    g_link = np.zeros(3)
    g_link[:-1] += 0.5 * 0.8 * 2 * d
    g_link[1:] -= 0.5 * 0.8 * 2 * d
    return local, link, g_local, g_link


def problem(text: str, name: str):  # type: ignore[no-untyped-def]
    return cfc.loads(text, name).compile(backend="python").bind()


def observe_all(p, trace_vars: str = "") -> Observe:  # type: ignore[no-untyped-def]
    layout = p.bound.layout
    return Observe(variables=variable_spans(layout), family_grads=True,
                   trace_vars=parse_trace_vars(trace_vars, layout) if trace_vars else ())


def hand_run(p, obs: Observe, points: list[np.ndarray], t: float = 0.1):  # type: ignore[no-untyped-def]
    """A Run driven by hand: accept each point in turn with step size t, one backtrack."""
    objective = p.objective()
    run = Run(objective, points[0], StopOptions(lanczos_steps=0), "hand", None, obs)
    for k, x in enumerate(points[1:], start=1):
        f, fam, g = objective.energy_and_grad(x)
        run.accept(k, x, f, fam, g, t, 1, None)
    return run, objective


def test_every_column_of_a_single_landau_term() -> None:
    p = problem(LANDAU, "one.cfc")
    xs = [np.array([0.5]), np.array([0.55]), np.array([0.62])]
    run, _ = hand_run(p, observe_all(p, "x"), xs)
    frame = run.trace.frame()
    assert frame.columns == [*BASE_COLUMNS, "energy_l", "step_length", "wall_time",
                             "evaluations", "grad_norm.l", "min.x", "mean.x", "max.x", "x"]
    for k, row in enumerate(frame.iter_rows(named=True)):
        x = xs[k][0]
        assert row["step"] == k
        assert row["energy"] == pytest.approx(landau_f(x), abs=1e-14)
        assert row["energy_l"] == pytest.approx(landau_f(x), abs=1e-14)
        g = landau_g(x)
        assert row["grad_norm"] == pytest.approx(abs(x - np.clip(x - g, -2, 2)), abs=1e-14)
        assert row["grad_norm.l"] == pytest.approx(abs(g), abs=1e-14)
        assert row["step_size"] == (0.0 if k == 0 else 0.1)
        assert row["backtracks"] == (0 if k == 0 else 1)
        assert row["step_length"] == pytest.approx(0.0 if k == 0 else abs(x - xs[k - 1][0]))
        assert row["accepted"] is True
        assert row["min.x"] == row["mean.x"] == row["max.x"] == row["x"] == x
        assert row["wall_time"] >= 0.0
        assert row["evaluations"] == 1  # the initial evaluation, then each hand-made one


def test_every_column_of_a_two_family_chain() -> None:
    p = problem(CHAIN, "chain.cfc")
    xs = [np.full(3, 0.5), np.array([0.2, 0.6, 0.9]), np.array([0.3, 0.65, 0.7])]
    run, _ = hand_run(p, observe_all(p, "eta[1:3]"), xs)
    frame = run.trace.frame()
    for name in ("energy_local", "energy_link", "grad_norm.local", "grad_norm.link",
                 "min.eta", "mean.eta", "max.eta", "eta[1]", "eta[2]"):
        assert name in frame.columns
    assert "eta[0]" not in frame.columns
    assert not any(c.startswith("weight.") for c in frame.columns)  # never changed
    for k, row in enumerate(frame.iter_rows(named=True)):
        x = xs[k]
        local, link, g_local, g_link = chain_parts(x)
        assert row["energy_local"] == pytest.approx(local, abs=1e-14)
        assert row["energy_link"] == pytest.approx(link, abs=1e-14)  # weighted, not raw
        assert row["energy"] == pytest.approx(local + link, abs=1e-14)
        assert row["grad_norm.local"] == pytest.approx(np.linalg.norm(g_local), abs=1e-13)
        assert row["grad_norm.link"] == pytest.approx(np.linalg.norm(g_link), abs=1e-13)
        g = g_local + g_link
        assert row["grad_norm"] == pytest.approx(np.max(np.abs(x - np.clip(x - g, 0, 1))))
        assert (row["min.eta"], row["mean.eta"], row["max.eta"]) == pytest.approx(
            (x.min(), x.mean(), x.max()))
        assert (row["eta[1]"], row["eta[2]"]) == (x[1], x[2])
        if k:
            assert row["step_length"] == pytest.approx(np.linalg.norm(x - xs[k - 1]))


def test_a_rejected_trial_is_a_row_with_accepted_false() -> None:
    p = problem(LANDAU, "one.cfc")
    objective = p.objective()
    run = Run(objective, np.array([0.5]), StopOptions(lanczos_steps=0), "hand", None,
              observe_all(p))
    f_bad, fam_bad = objective.energy(np.array([2.0]))
    run.reject(1, f_bad, 3.0, 0, fam_bad, np.array([2.0]))
    x = np.array([0.6])
    f, fam, g = objective.energy_and_grad(x)
    run.accept(1, x, f, fam, g, 1.5, 1, None)
    frame = run.trace.frame()
    assert frame["accepted"].to_list() == [True, False, True]
    assert frame["energy"][1] == pytest.approx(landau_f(2.0))
    assert frame["step_length"][1] == pytest.approx(1.5)
    assert frame["evaluations"].to_list() == [1, 1, 1]
    assert run.trace.energies == [pytest.approx(landau_f(0.5)), pytest.approx(landau_f(0.6))]


def test_a_weight_that_changes_gets_its_column() -> None:
    p = problem(CHAIN, "chain.cfc")
    objective = p.objective()
    run = Run(objective, np.full(3, 0.5), StopOptions(lanczos_steps=0), "hand")
    p.set_weights({"link": 2.0})  # a homotopy step: the live weights change
    x = np.array([0.4, 0.5, 0.6])
    f, fam, g = objective.energy_and_grad(x)
    run.accept(1, x, f, fam, g, 0.1, 0, None)
    frame = run.trace.frame()
    assert frame["weight.link"].to_list() == [0.5, 2.0]
    assert "weight.local" not in frame.columns


def test_relax_traces_every_column_and_stays_monotone() -> None:
    p = problem(CHAIN, "chain.cfc")
    frame = p.relax(solver="pgd", progress=observe_all(p, "eta"), max_steps=30).trace
    assert frame.height >= 2
    for name in ("step_length", "wall_time", "evaluations", "grad_norm.link", "eta[2]"):
        assert frame[name].null_count() == 0
    accepted = frame.filter(pl.col("accepted"))["energy"].to_list()
    assert all(b <= a for a, b in zip(accepted, accepted[1:], strict=False))
    assert frame["evaluations"].sum() > frame.height - 1


def test_trackers_see_every_record_and_the_result() -> None:
    seen: list[StepRecord] = []
    finished: list[object] = []

    class Listener:
        def on_step(self, record: StepRecord) -> None:
            seen.append(record)

        def on_finish(self, result: object) -> None:
            finished.append(result)

    p = problem(LANDAU, "one.cfc")
    relaxation = p.relax(solver="pgd", progress=Listener(), max_steps=5)
    assert [r.step for r in seen] == relaxation.trace["step"].to_list()
    assert finished == [relaxation.result]
    calls: list[tuple[int, float, float]] = []
    p.relax(solver="pgd", progress=lambda *a: calls.append(a), max_steps=5)
    assert calls and calls[0][0] == 1  # the old (step, energy, |pg|) hook still works


def test_trace_vars_needs_a_range_above_1000_elements() -> None:
    p = cfc.loads("model big\nsize N = 1500\nvar eta[N] = 0.5\n"
                  "factor l[i in 0..N] = landau(eta[i]; a = -1, b = 1)\n",
                  "big.cfc").compile(backend="python").bind()
    with pytest.raises(CfcError) as info:
        parse_trace_vars("eta", p.bound.layout)
    assert info.value.kind is ErrorKind.ARGUMENT
    assert "eta[0:100]" in info.value.hint
    traced = parse_trace_vars("eta[10:13]", p.bound.layout)
    assert traced[0].columns == ("eta[10]", "eta[11]", "eta[12]")
    with pytest.raises(CfcError, match="outside"):
        parse_trace_vars("eta[1400:1600]", p.bound.layout)
    with pytest.raises(CfcError) as info:
        parse_trace_vars("etta", p.bound.layout)
    assert "did you mean 'eta'" in info.value.hint


def _cfc_on(model: str, *args: str, tty: bool) -> tuple[str, str]:
    """Run the CLI with stderr on a pseudo-terminal (tty) or a pipe; (stdout, stderr)."""
    env = dict(os.environ, CFC_PROGRESS_DELAY="0")
    cmd = [sys.executable, "-m", "cfc_dsl.cli.main", "run", model, *args]
    if not tty:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT,
                              timeout=600)
        return done.stdout, done.stderr
    leader, follower = pty.openpty()
    termios.tcsetwinsize(follower, (24, 100))  # a terminal has a width; tqdm draws to it
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=follower, env=env, cwd=ROOT)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    out = proc.communicate(timeout=600)[0].decode()
    os.close(leader)
    return out, b"".join(chunks).decode(errors="replace")


def test_the_bar_shows_on_a_terminal_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = tmp_path / "one.cfc"
    model.write_text(LANDAU)
    args = ("--backend", "python", "--solver", "pgd")
    _, err = _cfc_on(str(model), *args, tty=True)
    assert "relax" in err and "step" in err  # tqdm's bar: "relax: ...| n/1000 [..step/s]"
    out, err = _cfc_on(str(model), *args, tty=False)
    assert "relax:" not in err and "energy" in out
    out, err = _cfc_on(str(model), *args, "--quiet", tty=True)
    assert out == "" and "relax:" not in err
    out, err = _cfc_on(str(model), *args, "--json", tty=True)
    assert "relax:" not in err and out.startswith("{")


def test_pgd_reports_its_rejected_trials() -> None:
    p = problem(LANDAU, "one.cfc")
    frame = p.relax(solver="pgd", progress=Observe(rejected=True), step=1.0, max_steps=1,
                    lanczos_steps=0).trace
    # x0 = 0.5, g = -0.5: the trial t = 1 lands on x = 1 (F = 0 > F0), then t = 0.5 on 0.75
    assert frame["accepted"].to_list() == [True, False, True]
    assert frame["step"].to_list() == [0, 1, 1]
    assert frame["energy"][1] == pytest.approx(landau_f(1.0), abs=1e-15)
    assert frame["step_size"].to_list()[1:] == [1.0, 0.5]
    assert frame["step_length"][1] == pytest.approx(0.5)
    assert frame["energy"][2] == pytest.approx(landau_f(0.75), abs=1e-15)
    assert frame["backtracks"][2] == 1
    plain = p.relax(solver="pgd", step=1.0, max_steps=1, lanczos_steps=0).trace
    assert plain["accepted"].to_list() == [True, True]  # not asked: no rejected rows
