"""Failures outside the model text: output paths, arguments, the cache, the compiler, files.

Each is a short message with a hint and exit 2 (the user's arguments or files) or 3 (the
environment), never a traceback, and none loses or overwrites what the user gave.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import EXAMPLES, run_cfc

CHAIN = str(EXAMPLES / "chain.cfc")


def clean_error(proc, code: int, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "internal error" not in proc.stderr
    assert "hint: " in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    path = tmp_path / "chain.cfc"
    shutil.copy(CHAIN, path)
    return path


# ---------------------------------------------------------------- outputs never clobber inputs
def test_out_onto_the_model_is_refused(chain: Path) -> None:
    before = chain.read_bytes()
    clean_error(run_cfc("run", str(chain), "--out", str(chain)), 2, "model file")
    assert chain.read_bytes() == before


def test_out_onto_another_model_is_refused(chain: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.cfc"
    other.write_text("var x\n")
    clean_error(run_cfc("run", str(chain), "--out", str(other)), 2, ".cfc model")
    assert other.read_text() == "var x\n"


def test_out_onto_the_init_file_is_refused(chain: Path, tmp_path: Path) -> None:
    point = tmp_path / "p.json"
    point.write_text("{}\n")
    clean_error(run_cfc("run", str(chain), "--init", str(point), "--out", str(point)), 2,
                "--init file")
    assert point.read_text() == "{}\n"


def test_trace_onto_a_data_file_is_refused(tmp_path: Path) -> None:
    model = tmp_path / "m.cfc"
    model.write_text("size N = 3\ndata s[N]\nvar x[N]\n"
                     "factor f[i in 0..N] = landau(x[i]; a = s[i], b = 1)\n")
    data = tmp_path / "s.csv"
    data.write_text("1\n2\n3\n")
    proc = run_cfc("run", str(model), "--data", f"s={data}", "--trace", str(data))
    clean_error(proc, 2, "data file")
    assert data.read_text() == "1\n2\n3\n"


def test_certificate_onto_the_model_is_refused(chain: Path) -> None:
    before = chain.read_bytes()
    clean_error(run_cfc("check", str(chain), "--certificate", str(chain)), 2, "model file")
    assert chain.read_bytes() == before


@pytest.mark.parametrize("flag", ["--out", "--trace"])
def test_output_that_is_a_directory(flag: str, tmp_path: Path) -> None:
    clean_error(run_cfc("run", CHAIN, flag, str(tmp_path)), 2, "is a directory")


def test_output_under_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    clean_error(run_cfc("run", CHAIN, "--out", str(blocker / "r.json")), 2, "is a file")


def test_out_and_trace_written_into_new_folders(tmp_path: Path) -> None:
    out, trace = tmp_path / "a" / "r.json", tmp_path / "b" / "t.csv"
    proc = run_cfc("run", CHAIN, "--out", str(out), "--trace", str(trace))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["model"] == "chain"
    assert trace.read_text().startswith("step")
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporaries


def test_graph_and_certificate_into_directories(tmp_path: Path) -> None:
    target = tmp_path / "g.dot"
    target.mkdir()
    clean_error(run_cfc("graph", CHAIN, "-o", str(target)), 2, "is a directory")
    clean_error(run_cfc("check", CHAIN, "--certificate", str(tmp_path)), 2, "is a directory")


# ---------------------------------------------------------------- compile --out-dir
def test_out_dir_onto_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "gen"
    blocker.write_text("mine")
    clean_error(run_cfc("compile", CHAIN, "--out-dir", str(blocker)), 2, "not a folder")
    assert blocker.read_text() == "mine"


def test_emit_needs_out_dir_and_kinds(tmp_path: Path) -> None:
    clean_error(run_cfc("compile", CHAIN, "--emit", "ir"), 2, "--emit needs --out-dir")
    clean_error(run_cfc("compile", CHAIN, "--out-dir", str(tmp_path), "--emit", ""), 2,
                "names no files")


def test_out_dir_writes_nothing_when_one_file_is_protected(tmp_path: Path) -> None:
    (tmp_path / "chain.h").write_text("my header\n")
    clean_error(run_cfc("compile", CHAIN, "--out-dir", str(tmp_path)), 2, "not generated")
    assert not (tmp_path / "chain.c").exists()  # checked before anything is written
    assert (tmp_path / "chain.h").read_text() == "my header\n"


# ---------------------------------------------------------------- arguments
@pytest.mark.parametrize("args, needle", [
    (["--max-steps", "-1"], "--max-steps"),
    (["--tol", "nan"], "--tol"),
    (["--tol", "-1"], "--tol"),
])
def test_run_arguments(args: list[str], needle: str) -> None:
    clean_error(run_cfc("run", CHAIN, *args), 2, needle)


def test_check_negative_seed() -> None:
    clean_error(run_cfc("check", CHAIN, "--seed", "-1"), 2, "--seed")


def test_model_path_is_a_directory_or_empty(tmp_path: Path) -> None:
    clean_error(run_cfc("run", str(tmp_path)), 2, "is a directory")
    clean_error(run_cfc("run", ""), 2, "empty")


def test_point_file_that_is_not_text(tmp_path: Path) -> None:
    point = tmp_path / "p.json"
    point.write_bytes(b"\xff\xfe{}")
    clean_error(run_cfc("eval", CHAIN, "--at", str(point)), 2, "not UTF-8")


def test_solution_file_that_is_not_text(tmp_path: Path) -> None:
    solution = tmp_path / "s.json"
    solution.write_bytes(b"\xff\xfe{}")
    proc = run_cfc("graph", CHAIN, "-o", str(tmp_path / "g.dot"), "--solution", str(solution),
                   "--set", "N=4")
    clean_error(proc, 2, "not UTF-8")


# ---------------------------------------------------------------- the kernel cache
def test_cache_clear_removes_only_cache_entries(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert run_cfc("compile", CHAIN, env={"CFC_CACHE_DIR": str(cache)}).returncode == 0
    (cache / "thesis").mkdir()
    (cache / "thesis" / "chapter1.tex").write_text("precious")
    (cache / "notes.txt").write_text("mine")
    proc = run_cfc("cache", "clear", env={"CFC_CACHE_DIR": str(cache)})
    assert proc.returncode == 0, proc.stderr
    assert "removed 1 cache entry" in proc.stdout
    assert (cache / "thesis" / "chapter1.tex").read_text() == "precious"
    assert (cache / "notes.txt").read_text() == "mine"


def test_cache_dir_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("x")
    proc = run_cfc("run", CHAIN, "--backend", "c", env={"CFC_CACHE_DIR": str(blocker)})
    clean_error(proc, 3, "kernel cache", "CFC_CACHE_DIR")


def test_damaged_cache_entry_is_rebuilt(tmp_path: Path) -> None:
    env = {"CFC_CACHE_DIR": str(tmp_path / "cache")}
    assert run_cfc("compile", CHAIN, env=env).returncode == 0
    [module] = (tmp_path / "cache").glob("*/*.so")
    module.write_bytes(b"truncated")
    proc = run_cfc("run", CHAIN, "--backend", "c", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["compile"]["cache"] == "miss"


# ---------------------------------------------------------------- the C compiler
def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


@pytest.mark.skipif(os.name != "posix", reason="shell scripts as compilers")
def test_compiler_that_fails(tmp_path: Path) -> None:
    cc = _script(tmp_path / "badcc", "echo 'badcc: license expired' >&2\nexit 1\n")
    proc = run_cfc("run", CHAIN, env={"CC": str(cc), "CFC_CACHE_DIR": str(tmp_path / "c")})
    clean_error(proc, 3, "failed to build", "license expired", "--backend python")


@pytest.mark.skipif(os.name != "posix", reason="shell scripts as compilers")
def test_compiler_that_writes_nothing(tmp_path: Path) -> None:
    cc = _script(tmp_path / "silentcc", "exit 0\n")
    proc = run_cfc("run", CHAIN, env={"CC": str(cc), "CFC_CACHE_DIR": str(tmp_path / "c")})
    clean_error(proc, 3, "wrote no module", "--backend python")


def test_empty_cc_means_the_default() -> None:
    proc = run_cfc("run", CHAIN, env={"CC": ""})
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- data and model files that work
def test_scalar_data_from_npy_and_csv(tmp_path: Path) -> None:
    model = tmp_path / "m.cfc"
    model.write_text("data c\ndata k : int\nvar x in [-2, 2] = 1\n"
                     "factor f = landau(x; a = c * k, b = 1)\n")
    np.save(tmp_path / "c.npy", np.array(-0.5))
    (tmp_path / "k.csv").write_text("2\n")
    proc = run_cfc("eval", str(model), "--at", str(_point(tmp_path, {"x": 1.0})), "--json",
                   "--data", f"c={tmp_path / 'c.npy'}", "--data", f"k={tmp_path / 'k.csv'}")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["energy"] == pytest.approx(-1.0 + 1.0)


def test_csv_with_byte_order_mark_keeps_its_first_row(tmp_path: Path) -> None:
    model = tmp_path / "m.cfc"
    model.write_text("data s[N]\nvar x[N] in [-5, 5] = 0\n"
                     "factor f[i in 0..N] = landau(x[i]; a = 1, b = 0, h = s[i])\n")
    (tmp_path / "s.csv").write_text("1\n2\n3\n", encoding="utf-8-sig")
    proc = run_cfc("run", str(model), "--data", f"s={tmp_path / 's.csv'}", "--json")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["x"]["x"]) == 3


def test_model_with_byte_order_mark_and_crlf(tmp_path: Path) -> None:
    model = tmp_path / "m.cfc"
    model.write_bytes(b"\xef\xbb\xbfvar x in [-2, 2] = 0.5\r\n"
                      b"factor f = landau(x; a = -1, b = 1)\r\n")
    proc = run_cfc("run", str(model), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["energy"] == pytest.approx(-0.25)


def _point(tmp_path: Path, values: dict[str, float]) -> Path:
    path = tmp_path / "point.json"
    path.write_text(json.dumps(values))
    return path


# ---------------------------------------------------------------- memory
def test_memory_budget_refuses_before_allocating(monkeypatch: pytest.MonkeyPatch) -> None:
    import cfc_dsl as cfc
    import cfc_dsl.runtime.bind.tables as bind_module
    from cfc_dsl.diagnostics import CfcError

    model = cfc.load(CHAIN)
    with pytest.raises(CfcError, match="needs about .* of memory"):
        bind_module.MemoryBudget(available=10_000).charge(10_001, "variable 'eta'", None)
    monkeypatch.setattr(bind_module, "_available_memory", lambda: 1_000_000)
    with pytest.raises(CfcError, match="memory") as err:
        bind_module.bind(model, (bind_module.Setting("N", 100_000.0),))
    assert err.value.span is not None and err.value.exit_code == 2
    bind_module.bind(model, (bind_module.Setting("N", 100.0),))  # small sizes still bind
