"""Threads: the C kernels give the same bits on 1, 2 and 3 threads (energy, gradient, HVP and
the Hessian's diagonal), on every shipped example and a random workload, with the threaded
path forced on (SERIAL_BELOW = 0); the NumPy reference backend is the independent oracle for
the values themselves. The threaded form is chosen by a family's size alone, so one thread
takes it too. A build without OpenMP runs single-threaded and says so once; the thread
count is checked.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import cfc_dsl as cfc
from cfc_dsl.diagnostics import CfcError
from cfc_dsl.runtime.backends import threads as threads_mod
from cfc_dsl.runtime.backends.threads import resolve_threads
from tests.conftest import EXAMPLES

RANDOM = """\
model random_edges
size N = 10
var x[N] in [0, 1] = 0.5
data edges[M, 2] : int
data w[M]
factor local[i in 0..N] = landau(x[i]; a = -0.5, b = 1.0)
factor quad[e in 0..M]  = quadratic(x[edges[e, 0]], x[edges[e, 1]]; w = w[e])
factor hinge[e in 0..M] = directed_hinge(x[edges[e, 1]], x[edges[e, 0]]; w = w[e])
"""


@pytest.fixture
def always_threaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads_mod, "SERIAL_BELOW", 0)


def random_problem(tmp_path, n: int, **bind):  # type: ignore[no-untyped-def]
    path = tmp_path / "random_edges.cfc"
    path.write_text(RANDOM)
    rng = np.random.default_rng(7)
    edges = rng.integers(0, n, size=(4 * n, 2))
    data = {"edges": edges, "w": rng.random(4 * n)}
    return cfc.load(path), {"sizes": {"N": n}, "data": data, **bind}


def _evaluations(problem, x):  # type: ignore[no-untyped-def]
    f, fam, g = problem.backend.energy_and_grad(x)
    e, efam = problem.backend.energy(x)
    _, _, rows = problem.backend.family_grads(x)
    v = np.cos(np.arange(x.size) * 0.7)  # a direction with both signs
    hv, hd = problem.backend.hvp(x, v), problem.backend.hess_diag(x)
    return [np.float64(f), fam, g, np.float64(e), efam, rows, hv, hd]


def _same_bits(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    for u, v in zip(a, b, strict=True):
        assert np.asarray(u).tobytes() == np.asarray(v).tobytes()


def _check_threads(model, bind, x) -> None:  # type: ignore[no-untyped-def]
    compiled = model.compile()
    problems = {t: compiled.bind(**bind, threads=t) for t in (1, 2, 3)}
    assert all(p is not None for p in problems[1].backend._threaded)  # 1 thread: same form
    runs = {t: _evaluations(p, x) for t, p in problems.items()}
    _same_bits(runs[1], runs[2])
    _same_bits(runs[1], runs[3])
    assert runs[1][0] == runs[1][3]  # energy() and energy_and_grad() agree to the bit
    reference = model.compile(backend="python").bind(**bind)
    f, _, g = reference.backend.energy_and_grad(x)
    assert runs[2][0] == pytest.approx(f, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(runs[2][2], g, rtol=1e-9, atol=1e-12)
    v = np.cos(np.arange(x.size) * 0.7)
    scale = 1.0 + float(np.max(np.abs(runs[2][7])))
    np.testing.assert_allclose(runs[2][6], reference.backend.hvp(x, v), rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(runs[2][7], reference.backend.hess_diag(x), rtol=1e-9,
                               atol=1e-12 * scale)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.cfc")), ids=lambda p: p.stem)
def test_examples_bit_identical_on_any_thread_count(path, always_threaded) -> None:  # type: ignore[no-untyped-def]
    model = cfc.load(path)
    names = {d.name for d in model.data}
    bind = {"data": {"shortcuts": EXAMPLES / "grid_shortcuts.npy"}} if "shortcuts" in names else {}
    bound = model.compile().bind(**bind)
    rng = np.random.default_rng(1)
    x = rng.uniform(bound.lower, bound.upper)
    _check_threads(model, bind, x)


@pytest.mark.parametrize("reorder", ["none", "sort", "rcm"])
def test_random_workload_bit_identical(tmp_path, always_threaded, reorder) -> None:  # type: ignore[no-untyped-def]
    model, bind = random_problem(tmp_path, 2000, reorder=reorder)
    x = np.random.default_rng(3).random(2000)
    _check_threads(model, bind, x)


def test_many_chunks_bit_identical(tmp_path, always_threaded, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """With chunks of 64 variables, 2,000 variables are 32 tasks, so 2 and 3 threads really
    share the work (at the default 2,048 the tests above are one chunk, one task)."""
    from cfc_dsl.runtime.bind import copies

    monkeypatch.setattr(copies, "CHUNK", 64)
    model, bind = random_problem(tmp_path, 2000, reorder="sort")
    assert copies.slot_copies(2000, (np.arange(8, dtype=np.int64),)).chunks == 32
    assert any(t is not None for t in model.compile().bind(**bind).backend._threaded)
    x = np.random.default_rng(5).random(2000)
    _check_threads(model, bind, x)


def test_threaded_path_is_taken(tmp_path, always_threaded) -> None:  # type: ignore[no-untyped-def]
    model, bind = random_problem(tmp_path, 500)
    problem = model.compile().bind(**bind, threads=2, reorder="sort")
    assert problem.backend.threads == 2
    assert all(t is not None for t in problem.backend._threaded)
    layout = problem.backend.layout
    # the Landau family is in order already: its only copy is the table itself
    assert layout.slot_copies(0, 500).slots[0][0] is layout.slots[0][0]
    quad = layout.slot_copies(1, 500)
    assert quad.slots[0][0] is layout.slots[1][0]  # sorted by its first slot at bind
    assert np.all(np.diff(quad.slots[1][1]) >= 0)  # the second copy, by the second slot
    rebound = model.compile().bind(**{**bind, "data": {**bind["data"], "w": np.ones(2000)}},
                                   threads=2, reorder="sort")
    assert rebound.backend.layout.slot_copies(1, 500) is quad  # other weights: not sorted again


def test_chunks_do_not_depend_on_threads_and_cover_every_instance() -> None:
    from cfc_dsl.runtime.bind.copies import slot_copies

    rng = np.random.default_rng(4)
    s0, s1 = rng.integers(0, 50, 300), rng.integers(0, 50, 300)
    copies = slot_copies(50, (s0, s1), chunk=8)
    assert copies.chunks == 7 and copies.starts.shape == (2, 8)
    w = rng.random(300)
    for i, key in enumerate((s0, s1)):
        own = copies.slots[i][i]
        assert copies.starts[i, 0] == 0 and copies.starts[i, -1] == 300
        for c in range(copies.chunks):  # chunk c holds exactly the instances of its variables
            run = own[copies.starts[i, c]:copies.starts[i, c + 1]]
            assert np.all((run >= 8 * c) & (run < 8 * c + 8))
        order = np.argsort(key, kind="stable")  # stable: ties keep the instance order
        assert copies.slots[i][1 - i].tolist() == (s1, s0)[i][order].tolist()
        assert copies.params((w,))[i][0].tolist() == w[order].tolist()


def test_small_problems_stay_serial(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    model, bind = random_problem(tmp_path, 100)
    problem = model.compile().bind(**bind, threads=2)
    assert all(t is None for t in problem.backend._threaded)  # below SERIAL_BELOW
    # the form follows the size only: at the threshold every thread count takes the threaded one
    monkeypatch.setattr(threads_mod, "SERIAL_BELOW", 400)  # local: 100, quad and hinge: 400
    for t in (1, 2):
        kinds = [p is not None for p in model.compile().bind(**bind, threads=t).backend._threaded]
        assert kinds == [False, True, True]


def test_thread_count_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFC_THREADS", "3")
    assert resolve_threads(None) == 3
    assert resolve_threads(2) == 2
    monkeypatch.delenv("CFC_THREADS")
    assert resolve_threads(None) >= 1
    for bad in (0, -1, "two", 1.5):
        with pytest.raises(CfcError):
            resolve_threads(bad)  # type: ignore[arg-type]
    monkeypatch.setenv("CFC_THREADS", "many")
    with pytest.raises(CfcError, match="CFC_THREADS"):
        resolve_threads(None)


def test_without_openmp_single_threaded_and_said_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    script = f"""
import numpy as np, cfc_dsl as cfc
from cfc_dsl.runtime.build.toolchain import toolchain
assert "-fopenmp" not in toolchain().flags
m = cfc.load({str(EXAMPLES / 'chain.cfc')!r})
c = m.compile()
a = c.bind(threads=2); b = c.bind(threads=3)
assert a.backend.threads == 1 and b.backend.threads == 1
x = a.bound.x0
assert a.energy_and_grad(x)[0] == b.energy_and_grad(x)[0]
"""
    env = {**__import__("os").environ, "CFC_OPENMP": "0", "CFC_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("running single-threaded") == 1


def test_cli_threads_flag(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import json

    from cfc_dsl.cli.main import main

    monkeypatch.setenv("CFC_THREADS", "1")  # restored after the test: the CLI sets them
    monkeypatch.setenv("CFC_REORDER", "sort")
    outputs = []
    for t in ("1", "2"):
        out = tmp_path / f"out{t}.json"
        assert main(["run", str(EXAMPLES / "chain.cfc"), "--threads", t, "--reorder", "rcm",
                     "--max-steps", "50", "--quiet", "--out", str(out)]) == 0
        result = json.loads(out.read_text())
        outputs.append((result["x"], result["energy"]))
    assert outputs[0] == outputs[1]


def test_threaded_form_without_openmp_gives_the_same_bits(tmp_path, always_threaded) -> None:  # type: ignore[no-untyped-def]
    """The threaded form is chosen by size, not by OpenMP: a build without it runs the same
    chunks in the same order on one thread, so its bits are the OpenMP build's."""
    import hashlib

    model, bind = random_problem(tmp_path, 1500)
    np.save(tmp_path / "edges.npy", bind["data"]["edges"])
    np.save(tmp_path / "w.npy", bind["data"]["w"])
    x = np.random.default_rng(5).random(1500)
    np.save(tmp_path / "x.npy", x)

    def digest(p) -> str:  # type: ignore[no-untyped-def]
        f, _, g = p.backend.energy_and_grad(x)
        v = np.cos(np.arange(x.size) * 0.7)
        parts = [np.float64(f), g, p.backend.hvp(x, v), p.backend.hess_diag(x)]
        return hashlib.sha256(b"".join(np.asarray(a).tobytes() for a in parts)).hexdigest()

    here = digest(model.compile().bind(**bind, threads=2))
    script = f"""
import hashlib, numpy as np, cfc_dsl as cfc
from cfc_dsl.runtime.backends import threads
threads.SERIAL_BELOW = 0
d = {str(tmp_path)!r}
x = np.load(d + "/x.npy")
p = cfc.load(d + "/random_edges.cfc").compile().bind(sizes={{"N": 1500}}, threads=1,
    data={{"edges": np.load(d + "/edges.npy"), "w": np.load(d + "/w.npy")}})
assert all(t is not None for t in p.backend._threaded) and p.backend.threads == 1
f, _, g = p.backend.energy_and_grad(x)
v = np.cos(np.arange(x.size) * 0.7)
parts = [np.float64(f), g, p.backend.hvp(x, v), p.backend.hess_diag(x)]
print(hashlib.sha256(b"".join(np.asarray(a).tobytes() for a in parts)).hexdigest())
"""
    env = {**__import__("os").environ, "CFC_OPENMP": "0", "CFC_CACHE_DIR": str(tmp_path / "c")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == here
