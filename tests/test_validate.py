"""Graph validation (cfc_dsl.runtime.graph.validate): each warning and note, its source location, the
summary, --strict, and the `cfc compile` hook."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import cfc_dsl as cfc
from cfc_dsl.diagnostics import CfcError, Severity
from cfc_dsl.runtime.bind.tables import DataInput, Setting, bind
from cfc_dsl.runtime.graph.bipartite import to_networkx
from cfc_dsl.runtime.graph.validate import check_graph, findings, report_findings, summarize
from conftest import EXAMPLES, run_cfc

SHORTCUTS = (DataInput("shortcuts", EXAMPLES / "grid_shortcuts.npy"),)


def _findings(text: str, settings: tuple[Setting, ...] = ()):  # type: ignore[no-untyped-def]
    return findings(bind(cfc.loads(text, "t.cfc"), settings))


def _only(found, severity: Severity, fragment: str):  # type: ignore[no-untyped-def]
    hits = [d for d in found if d.severity is severity and fragment in d.message]
    assert len(hits) == 1, [d.render() for d in found]
    return hits[0]


def test_untouched_variables_point_at_their_declaration() -> None:
    found = _findings("var eta[6] in [0, 1]\nvar lone in [0, 1]\n"
                      "factor f[i in 0..4] = landau(eta[i]; a = 1, b = 1)\n")
    array = _only(found, Severity.WARNING, "2 of 6 elements of 'eta'")
    assert "eta[4], eta[5]" in array.message and array.span.line == 1
    scalar = _only(found, Severity.WARNING, "variable 'lone' is touched by no factor")
    assert scalar.span.line == 2 and scalar.span.column == 1
    assert "add a factor" in scalar.hint


def test_repeated_slot_names_the_instance_and_the_call() -> None:
    found = _findings("var x[4] in [0, 1]\n"
                      "factor ring[i in 0..4] = quadratic(x[i], x[(i + 4) % 4])\n")
    d = _only(found, Severity.WARNING, "pass the same variable to slots 'x' and 'y'")
    assert d.message.startswith("4 instances of factor 'ring'")
    assert "quadratic(x[0], x[0])" in d.message
    assert (d.span.line, d.span.column) == (2, 26)  # the call, where the indices are


def test_duplicates_need_same_variables_and_same_parameters() -> None:
    found = _findings("var x[3] in [0, 1]\n"
                      "factor same[i in 0..3] = quadratic(x[0], x[1]; w = 0.5)\n"
                      "factor differ[i in 0..3] = quadratic(x[0], x[1]; w = i)\n"
                      "factor swapped[i in 0..2] = quadratic(x[i], x[1 - i])\n")
    d = _only(found, Severity.WARNING, "duplicate instance")
    assert "'same' has 2 duplicate instances" in d.message and "i = 1 repeats i = 0" in d.message
    assert d.span.line == 2
    assert not [f for f in found if "'differ'" in f.message or "'swapped'" in f.message]


def test_empty_if_filter_points_at_the_condition() -> None:
    found = _findings("size N = 8\nvar x[N] in [0, 1]\n"
                      "factor f[i in 0..N] = landau(x[i]; a = 1, b = 1)\n"
                      "factor g[i in 0..N if i > N] = quadratic(x[i], x[0])\n")
    d = _only(found, Severity.WARNING, "'if' filter of factor 'g' keeps none of its 8")
    assert (d.span.line, d.span.column) == (4, 23)  # the condition itself
    empty = _findings("size N = 1\nvar x[2] in [0, 1]\n"
                      "factor f[i in 0..2] = landau(x[i]; a = 1, b = 1)\n"
                      "factor g[i in 0..N-1] = quadratic(x[i], x[i+1])\n")
    _only(empty, Severity.WARNING, "factor 'g' has no instances: its ranges are empty at N = 1")


def test_components_note_counts_and_sizes() -> None:
    found = _findings("var x[5] in [0, 1]\nvar y[2] in [0, 1]\n"
                      "factor a[i in 0..4] = quadratic(x[i], x[i+1])\n"
                      "factor b = quadratic(y[0], y[1])\n")
    d = _only(found, Severity.NOTE, "connected components")
    assert "2 connected components (variables per component: 5, 2)" in d.message
    assert d.span.line == 2 and "y[0]" in d.hint


def test_gate_that_can_never_open() -> None:
    found = _findings("var g[3] in [0, 1]\nvar h in [0, 1]\n"
                      "factor cost[i in 0..3] = gate_local(g[i])\n"
                      "factor pay[i in 0..3] = gate_benefit(g[i]; delta = 0.1 * i - 0.05)\n"
                      "factor damp = damped_gate_benefit(h; delta = 0)\n"
                      "factor link = quadratic(g[0], h)\n")
    d = _only(found, Severity.NOTE, "gate(s) of 'g'")
    assert "1 gate(s) of 'g' (g[0]) can never open" in d.message and d.span.line == 4
    h = _only(found, Severity.NOTE, "gate 'h' can never open")
    assert h.span.line == 5 and "delta > 0" in h.hint


def test_a_gate_with_one_paying_benefit_can_open() -> None:
    found = _findings("var g in [0, 1]\nfactor a = gate_benefit(g; delta = -1)\n"
                      "factor b = gate_benefit(g; delta = 0.2)\n")
    assert not [d for d in found if "never open" in d.message]


@pytest.mark.parametrize("name", ["chain", "seed_baseline", "seed_dense",
                                  "sequence_redemption", "grid_percolation"])
def test_examples_are_clean_and_summary_matches_networkx(name: str) -> None:
    model = cfc.load(str(EXAMPLES / f"{name}.cfc"))
    data = SHORTCUTS if model.data else ()
    report = check_graph(model, data=data)
    assert not report.warnings, [d.render() for d in report.diagnostics]
    bound = bind(model, (Setting("N", 12),) if name == "chain" else (), data)
    summary = summarize(bound)
    graph = to_networkx(bound)
    simple = nx.Graph(graph)
    assert summary.cycle_basis == len(nx.cycle_basis(simple))
    assert summary.variables == bound.n
    assert sum(summary.factors.values()) == graph.number_of_nodes() - bound.n
    assert sorted(summary.components, reverse=True) == sorted(
        (sum(1 for n in c if graph.nodes[n]["kind"] == "variable")
         for c in nx.connected_components(graph)), reverse=True)
    degrees = {}
    for node, deg in graph.degree():
        if graph.nodes[node]["kind"] == "variable":
            degrees[deg] = degrees.get(deg, 0) + 1
    assert summary.degrees == dict(sorted(degrees.items()))


def test_summary_of_chain() -> None:
    bound = bind(cfc.load(str(EXAMPLES / "chain.cfc")))
    lines = "\n".join(summarize(bound).lines())
    assert "64 variables, 127 factors" in lines
    assert "local 64, link 63" in lines
    assert "2: 2, 3: 62" in lines
    assert "connected components: 1" in lines
    assert "cycle basis: 0 independent cycles (of the bipartite variable–factor graph" in lines


def test_report_prints_to_stderr_and_strict_raises() -> None:
    model = cfc.loads("var x[3] in [0, 1]\nfactor f = landau(x[0]; a = 1, b = 1)\n", "s.cfc")
    out = io.StringIO()
    report = report_findings(model, stream=out, summary=True)
    text = out.getvalue()
    assert "s.cfc:1:1: warning: 2 of 3 elements of 'x'" in text and " 1 | var x[3]" in text
    assert "^^^^" in text and "hint: " in text and "factor graph of s" in text
    assert len(report.warnings) == 1
    out = io.StringIO()
    with pytest.raises(CfcError) as err:
        report_findings(model, strict=True, stream=out)
    assert err.value.exit_code == 2 and "--strict" in err.value.message
    assert "s.cfc:1:1: error: 2 of 3 elements" in out.getvalue()


def test_model_with_data_is_skipped_with_a_note_unless_data_is_given() -> None:
    model = cfc.load(str(EXAMPLES / "grid_percolation.cfc"))
    skipped = check_graph(model)
    assert skipped.summary is None and len(skipped.diagnostics) == 1
    note = skipped.diagnostics[0]
    assert note.severity is Severity.NOTE and "--data shortcuts=PATH" in note.hint
    assert check_graph(model, data=SHORTCUTS).summary is not None


def test_validation_is_vectorised() -> None:
    import time

    model = cfc.load(str(EXAMPLES / "sequence_redemption.cfc"))
    bound = bind(model, (Setting("N", 200_000), Setting("D", 20)))
    start = time.perf_counter()
    found = findings(bound)
    assert time.perf_counter() - start < 10.0
    assert not [d for d in found if d.severity is Severity.WARNING]


BAD = """model bad
var eta[4] in [0, 1]
factor f[i in 0..3] = quadratic(eta[i], eta[i+1])
factor twice[i in 0..2] = quadratic(eta[0], eta[0])
"""


def test_compile_prints_findings_and_strict_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.cfc"
    path.write_text(BAD)
    strict = run_cfc("compile", str(path), "--strict")
    assert strict.returncode == 2, strict.stderr
    assert f"{path}:4:27: error: 2 instances of factor 'twice'" in strict.stderr
    assert "factor-graph warning" in strict.stderr and "compiled" not in strict.stdout


def test_compile_hook_binds_with_set_and_data(capsys: pytest.CaptureFixture[str]) -> None:
    from cfc_dsl.cli.common import print_findings

    grid = cfc.load(str(EXAMPLES / "grid_percolation.cfc"))
    print_findings(grid, True, argparse.Namespace(set=[], data=[]))
    err = capsys.readouterr().err
    assert "note: factor-graph checks skipped" in err and "--data shortcuts=PATH" in err
    print_findings(grid, True, argparse.Namespace(set=["L=16"],
                                                   data=[f"shortcuts={SHORTCUTS[0].value}"]))
    assert capsys.readouterr().err == ""
    with pytest.raises(CfcError) as err_info:
        print_findings(cfc.loads(BAD, "bad.cfc"), False, argparse.Namespace(set=["N=3"], data=[]))
    assert "unknown name 'N' in --set" in err_info.value.message


def test_findings_are_json_ready() -> None:
    model = cfc.loads(BAD, "bad.cfc")
    payload = check_graph(model).to_json()
    first = payload["findings"][0]
    assert {"severity", "message", "hint", "file", "line", "column"} <= set(first)
    assert payload["summary"]["cycle_basis_of"] == "variable-factor graph"
    assert np.isfinite(payload["summary"]["variables"])
