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
    clean_error(proc, 3, "wrote no", "--backend python")


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


# ---------------------------------------------------------------- non-regular files (FIFOs)
fifos = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


class _Reader:
    """Reads a FIFO to its end in a thread, as `cat fifo > file` would."""

    def __init__(self, fifo: Path) -> None:
        import threading

        self.fifo, self.data = fifo, b""
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with open(self.fifo, "rb") as f:
            self.data = f.read()

    def join(self) -> bytes:
        self.thread.join(timeout=60)
        if self.thread.is_alive():  # nothing was written: let the reader's open return
            os.close(os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK))
            self.thread.join(timeout=10)
        return self.data


@fifos
def test_fifo_inputs_are_refused_without_waiting(chain: Path, tmp_path: Path) -> None:
    fifo = _fifo(tmp_path / "pipe")
    for args in (["run", str(fifo)], ["check", str(fifo)], ["eval", str(chain), "--at", str(fifo)],
                 ["run", str(chain), "--init", str(fifo)],
                 ["graph", str(chain), "-o", str(tmp_path / "g.dot"), "--solution", str(fifo)],
                 ["check", "--verify", str(fifo)]):
        clean_error(run_cfc(*args), 2, f"'{fifo}' is a FIFO (named pipe), not a regular file")
    model = tmp_path / "m.cfc"
    model.write_text("size N = 3\ndata s[N]\nvar x[N]\n"
                     "factor f[i in 0..N] = landau(x[i]; a = s[i], b = 1)\n")
    for name in ("s.npy", "s.csv"):
        data = _fifo(tmp_path / name)
        proc = run_cfc("run", str(model), "--data", f"s={data}")
        clean_error(proc, 2, "is a FIFO", f"{model}:2:1")  # located at the declaration
    assert stat_is_fifo(fifo)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_endless_device_as_input(chain: Path, tmp_path: Path) -> None:
    zero = tmp_path / "zero.cfc"
    zero.symlink_to("/dev/zero")
    clean_error(run_cfc("run", str(zero)), 2, "is a character device")
    clean_error(run_cfc("eval", str(chain), "--at", "/dev/zero"), 2, "is a character device")


def stat_is_fifo(path: Path) -> bool:
    import stat

    return stat.S_ISFIFO(os.lstat(path).st_mode)


@fifos
def test_out_into_a_fifo_is_written_in_place(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path / "result.json")
    reader = _Reader(fifo)
    proc = run_cfc("run", CHAIN, "--out", str(fifo), "--backend", "python")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(reader.join())["model"] == "chain"
    assert stat_is_fifo(fifo)  # still a FIFO: never replaced by a regular file


@fifos
def test_trace_through_a_link_into_a_fifo(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path / "pipe")
    link = tmp_path / "trace.csv"
    link.symlink_to(fifo)
    reader = _Reader(fifo)
    proc = run_cfc("run", CHAIN, "--trace", str(link), "--backend", "python")
    assert proc.returncode == 0, proc.stderr
    assert reader.join().startswith(b"step,energy")
    assert link.is_symlink() and stat_is_fifo(fifo)


@fifos
def test_out_into_a_fifo_no_one_reads_is_refused(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path / "result.json")
    proc = run_cfc("run", CHAIN, "--out", str(fifo), "--backend", "python")
    clean_error(proc, 2, "no process is reading")
    assert stat_is_fifo(fifo)


# ---------------------------------------------------------------- symlinked outputs
def test_out_through_a_link_to_a_model_is_refused(chain: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.cfc"
    other.write_text("var x\n")
    link = tmp_path / "link.json"
    link.symlink_to(other)
    clean_error(run_cfc("run", str(chain), "--out", str(link)), 2, "a link to", ".cfc model")
    assert other.read_text() == "var x\n" and link.is_symlink()
    link.unlink()
    link.symlink_to(chain)  # the model of this very command, under another name
    before = chain.read_bytes()
    clean_error(run_cfc("run", str(chain), "--out", str(link)), 2, "model file")
    assert chain.read_bytes() == before


def test_out_through_a_link_replaces_its_target(tmp_path: Path) -> None:
    target = tmp_path / "results" / "r.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    proc = run_cfc("run", CHAIN, "--out", str(link), "--backend", "python")
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and json.loads(target.read_text())["model"] == "chain"


# ---------------------------------------------------------------- JSON limits, memory, empty sizes
def test_certificate_json_limits(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    clean_error(run_cfc("check", "--verify", str(deep)), 2, f"{deep}:1:65: error: the "
                "certificate nests more than 64 levels")
    digits = tmp_path / "digits.json"
    digits.write_text('{"schema": ' + "9" * 5000 + "}")
    clean_error(run_cfc("check", "--verify", str(digits)), 2, f"{digits}:1:12: error: a number "
                "of 5,000 characters")


def test_npy_within_its_file_but_over_the_memory_budget(tmp_path: Path) -> None:
    from cfc_dsl.diagnostics import CfcError
    from cfc_dsl.model import DataSpec, DType
    from cfc_dsl.runtime.bind.data import load_array
    from cfc_dsl.runtime.bind.tables import MemoryBudget

    np.save(tmp_path / "s.npy", np.zeros(1000))
    spec = DataSpec("s", (), DType.REAL, None)  # type: ignore[arg-type]
    with pytest.raises(CfcError, match="data 's' .* needs about"):
        load_array(tmp_path / "s.npy", spec, MemoryBudget(available=1000 * 8))
    assert load_array(tmp_path / "s.npy", spec, MemoryBudget(available=1000 * 16)).size == 1000


@pytest.mark.parametrize("backend", ["python", "c"])
def test_empty_size_with_modulo_in_a_family_of_no_instances(tmp_path: Path, backend: str) -> None:
    model = tmp_path / "m.cfc"
    model.write_text("size N = 0\nsize M = 3\nvar x[M]\ninit x[i in 0..N] = 1 / (i % N)\n"
                     "factor f[i in 0..N] = quadratic(x[i % N], x[(i + 1) % N])\n"
                     "factor g[i in 0..N, j in 0..(M % N) if i % N == 0] = "
                     "landau(x[j % M]; a = 1 / (i % N), b = 1)\n")
    proc = run_cfc("run", str(model), "--backend", backend, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["energy"] == 0.0
    assert run_cfc("check", str(model), "--samples", "5").returncode == 0
