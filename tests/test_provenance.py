"""The provenance block (deterministic, no timestamps, naming what produced a result), the
`schema` key of the JSON shapes, `--out result.npz`, Parquet metadata, --quiet, --show and
the post-run summary."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

import cfc_dsl as cfc
from cfc_dsl.runtime.observe.provenance import SCHEMA_VERSION, provenance, sha256_text
from cfc_dsl.runtime.observe.summary import bound_counts, dominant_families, show_values
from conftest import run_cfc

CHAIN = """model chain
size N = 6
param a = -0.5
var eta[N] in [0, 1] = 0.3
var gate in [0, 1] = 0.0
factor local[i in 0..N] = landau(eta[i]; a = a, b = 1.0)
factor link[i in 0..N-1] = quadratic(eta[i], eta[i+1]; w = 0.8)
factor open = gate_benefit(gate; w = 1.0, delta = 0.3)
"""
KEYS = {"schema_version", "cfc_version", "model", "source_sha256", "module_digest", "backend",
        "compiler", "settings", "solver", "solver_options", "seed"}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("prov") / "chain.cfc"
    path.write_text(CHAIN)
    return path


def test_the_block_is_deterministic_and_has_no_time() -> None:
    model = cfc.loads(CHAIN, "chain.cfc")
    blocks = []
    for _ in range(2):
        problem = model.compile(backend="python").bind(sizes={"N": 6}, params={"a": -0.4})
        blocks.append(json.dumps(provenance(problem, "pgd", None, 7), sort_keys=True))
    assert blocks[0] == blocks[1]
    block = json.loads(blocks[0])
    assert set(block) == KEYS
    assert block["schema_version"] == SCHEMA_VERSION
    assert block["source_sha256"] == sha256_text(CHAIN)
    assert block["settings"]["sizes"] == {"N": 6}
    assert block["settings"]["params"]["a"] == -0.4
    assert block["seed"] == 7
    text = blocks[0].lower()
    for word in ("time", "date", "host", "/tmp"):
        assert word not in text


def test_run_out_json_npz_and_parquet_carry_it(model_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out, npz, trace = tmp_path / "r.json", tmp_path / "r.npz", tmp_path / "t.parquet"
    proc = run_cfc("run", str(model_file), "--backend", "python", "--solver", "pgd",
                   "--out", str(out), "--trace", str(trace), "--json")
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    saved = json.loads(out.read_text())
    assert printed["schema"] == saved["schema"] == "cfc.run/1"
    assert set(saved["provenance"]) == KEYS
    assert saved["provenance"]["solver"] == "pgd"
    assert saved["provenance"]["source_sha256"] == sha256_text(CHAIN)
    meta = pq.read_schema(trace).metadata
    assert json.loads(meta[b"cfc.provenance"]) == saved["provenance"]
    assert set(saved["summary"]) == {"bounds", "dominant_families", "residuals"}
    # the JSON --out still reads as a point
    proc = run_cfc("eval", str(model_file), "--backend", "python", "--at", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    evaluated = json.loads(proc.stdout)
    assert evaluated["schema"] == "cfc.eval/1"
    assert evaluated["energy"] == pytest.approx(saved["energy"], abs=1e-12)
    proc = run_cfc("run", str(model_file), "--backend", "python", "--solver", "pgd",
                   "--out", str(npz), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    with np.load(npz) as arrays:
        assert np.allclose(arrays["x.eta"], saved["x"]["eta"])
        rest = json.loads(str(arrays["result"]))
    assert rest["provenance"] == saved["provenance"]
    assert "x" not in rest


def test_compile_json_has_a_schema_and_quiet_prints_nothing(model_file) -> None:  # type: ignore[no-untyped-def]
    proc = run_cfc("compile", str(model_file), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["schema"] == "cfc.compile/1"
    proc = run_cfc("compile", str(model_file), "--quiet")
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""
    proc = run_cfc("compile", str(model_file), "--verbose")
    assert "cfc: build" in proc.stderr and "compiled chain" in proc.stdout


def test_show_and_the_summary(model_file) -> None:  # type: ignore[no-untyped-def]
    proc = run_cfc("run", str(model_file), "--backend", "python", "--solver", "pgd",
                   "--show", "eta[1:3],gate", "--verbose")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.strip().startswith("eta[1:3] = [") for line in lines)
    assert "  gate = 1" in lines  # the benefit opens the gate all the way
    assert any("gate 0 at lower, 1 at upper (of 1)" in line for line in lines)
    assert any(line.strip().startswith("largest families") for line in lines)
    assert any(line.strip().startswith("largest instances") for line in lines)
    proc = run_cfc("run", str(model_file), "--backend", "python", "--show", "eta[4:9]")
    assert proc.returncode == 2 and "outside 'eta'" in proc.stderr
    assert "--show eta[4:9]" in proc.stderr  # located on the command line


def test_summary_parts_by_hand() -> None:
    problem = cfc.loads(CHAIN, "chain.cfc").compile(backend="python").bind()
    x = np.array([0.0, 0.0, 0.5, 1.0, 1.0, 1.0, 1.0])
    counts = bound_counts(problem.bound.layout, x, problem.lower, problem.upper)
    assert [(c.variable, c.at_lower, c.at_upper) for c in counts] == [("eta", 2, 3),
                                                                       ("gate", 0, 1)]
    ranked = dominant_families({"a": -3.0, "b": 1.0, "c": 0.0})
    assert ranked[0] == ("a", -3.0, 0.75) and ranked[1] == ("b", 1.0, 0.25)
    assert show_values("eta[2],gate", problem.bound.layout, x) == [("eta[2]", [0.5]),
                                                                   ("gate", [1.0])]
