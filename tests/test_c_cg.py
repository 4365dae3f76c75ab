"""newton's CG solve in C (runtime/solvers/cgloop.py) against its Python loop
(`_Model._steihaug`): each C solve against the Python loop on the very same inputs (the
same boundary flag and product count, d and Hd equal to round-off: the dot products sum in
another order), whole runs alike on the standard workload and the examples, the kernel
descriptor the C file declares equal to the template's, and the fallbacks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from test_c_loop import RANDOM, SADDLE, agree, on_and_off, workload

import cfc_dsl as cfc
from cfc_dsl.runtime.solvers import cgloop, newton

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def random_model():  # type: ignore[no-untyped-def]
    return cfc.loads(RANDOM, "random.cfc").compile()


class Checked:
    """Runs the Python CG beside every C solve on copies of its inputs and compares."""

    def __init__(self, monkeypatch) -> None:  # type: ignore[no-untyped-def]
        self.solves, self.products = 0, 0
        orig = cgloop.CgLoop.steihaug

        def checked(loop, x, free, minv, s, r, delta, tol, max_cg):  # type: ignore[no-untyped-def]
            r0 = r.copy()
            d, hd, boundary, products = orig(loop, x, free, minv, s, r, delta, tol, max_cg)
            model = newton._Model(loop.objective, x, np.zeros_like(x),
                                  newton.NewtonOptions(max_cg=max_cg))
            model._minv = minv  # the masked preconditioner: minv * free == minv
            pd, phd, pboundary = model._steihaug(free, s, r0, delta, tol)
            assert boundary == pboundary
            assert products == model.products
            scale = max(1.0, float(np.max(np.abs(pd))), float(np.max(np.abs(phd))))
            np.testing.assert_allclose(d, pd, rtol=0, atol=1e-12 * scale)
            np.testing.assert_allclose(hd, phd, rtol=0, atol=1e-12 * scale)
            np.testing.assert_allclose(r, r0, rtol=0, atol=1e-12 * scale)
            self.solves += 1
            self.products += products
            return d, hd, boundary, products

        monkeypatch.setattr(cgloop.CgLoop, "steihaug", checked)


def both(make, monkeypatch, **options):  # type: ignore[no-untyped-def]
    """(C CG run, Python CG run) of newton on fresh bindings of one problem. A progress
    hook keeps newton's trials in Python (tronloop.py steps aside for it), where the C CG
    serves them."""
    spy = Checked(monkeypatch)
    return on_and_off(make, monkeypatch, "newton", lambda: spy.solves, "the C CG loop",
                      progress=lambda step, f, pg: None, **options)


@pytest.mark.parametrize("n, seed", [(100, 0), (1000, 0), (300, 3), (2000, 5)])
def test_c_cg_matches_the_python_cg(random_model, monkeypatch, n: int, seed: int) -> None:  # type: ignore[no-untyped-def]
    fast, slow = both(lambda: workload(random_model, n, seed), monkeypatch)
    agree(fast, slow)
    assert fast.result.evaluations == slow.result.evaluations


@pytest.mark.parametrize("options", [{"options": {"max_cg": 2}}, {"options": {"cg_tol": 0.5}},
                                     {"options": {"precondition": False}}, {"tol": 1e-3}])
def test_c_cg_options(random_model, monkeypatch, options) -> None:  # type: ignore[no-untyped-def]
    agree(*both(lambda: workload(random_model, 200, 1), monkeypatch, **options))


def test_c_cg_on_the_examples(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    chain = cfc.load(ROOT / "examples" / "chain.cfc").compile()
    jitter = np.random.default_rng(1).uniform(-0.05, 0.05, 500)
    agree(*both(lambda: chain.bind(sizes={"N": 500}, init={"eta": 0.9 + jitter}),
                monkeypatch))
    dense = cfc.load(ROOT / "examples" / "seed_dense.cfc").compile()
    agree(*both(lambda: dense.bind(sizes={"N": 16}), monkeypatch))
    saddle = cfc.loads(SADDLE, "saddle.cfc").compile()  # negative curvature: CG's exit
    fast, slow = both(lambda: saddle.bind(init={"x": 0.3, "y": 0.0}), monkeypatch)
    agree(fast, slow)


def _fields(text: str) -> list[str]:
    body = re.search(r"struct cfc_kernel \{(.*?)\};", text, re.S)
    assert body is not None
    return re.findall(r"(\w+)\s*[;,]", body.group(1))


def test_the_descriptor_is_the_templates() -> None:
    """cgloop.py declares struct cfc_kernel itself (it is built apart from any model):
    the same fields in the same order, pointers where the template has pointers, and the
    HVP's function type word for word."""
    template = (ROOT / "templates" / "kernels.c.j2").read_text()
    ours = cgloop.KERNEL_STRUCT
    assert _fields(ours) == _fields(template) == [
        "slots", "params", "terms", "e", "eg", "hv", "hd"]
    for kind in ("hvr", "hdr"):  # the HVP's and the Hessian diagonal's function types
        typedef = re.search(rf"typedef void \(\*cfc_{kind}_fn\)[^\n]*", template)
        assert typedef is not None and typedef.group(0) in ours
        assert f"cfc_{kind}_fn h{kind[1]};" in template and f"cfc_{kind}_fn h{kind[1]};" in ours
    assert "cfc_hvr_fn hv;" in template and "int64_t slots, params;" in template
    assert "const unsigned char *terms;" in template


def test_c_cg_steps_aside(random_model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Threaded families, a renumbering, another objective, an objective without HVP and
    CFC_C_LOOPS=0 keep the Python CG."""
    from cfc_dsl.runtime.objective import Objective
    from cfc_dsl.runtime.solvers.registry import Needs

    problem = workload(random_model, 100)
    backend = problem.backend

    def objective(needs=Needs.HVP):  # type: ignore[no-untyped-def]
        n = backend.bound.n
        return Objective(backend, np.ascontiguousarray(backend.weights), np.zeros(n),
                         np.ones(n), ("local", "quad", "hinge"), lambda x, k: ValueError(),
                         needs)

    assert cgloop.CgLoop.for_objective(objective()) is not None
    assert cgloop.CgLoop.for_objective(objective(Needs.NONE)) is None
    assert cgloop.CgLoop.for_objective(object()) is None
    monkeypatch.setenv("CFC_C_LOOPS", "0")
    assert cgloop.CgLoop.for_objective(objective()) is None
    monkeypatch.delenv("CFC_C_LOOPS")
    saved = backend._all
    backend._all = None  # what a threaded family leaves (CBackend.threads)
    assert cgloop.tables(backend) is None
    backend._all = saved
    monkeypatch.setenv("CFC_REORDER", "rcm")
    renumbered = workload(random_model, 300, 2)
    assert renumbered.backend.layout.perm is not None
    assert cgloop.tables(renumbered.backend) is None


def test_a_built_loop_opens_without_pycparser(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The loops' FFIs come from cffi's ABI modules kept beside the libraries (loops._ffi):
    a second process whose loops are built imports no pycparser; a damaged module is
    parsed again and rewritten, and the loop still opens."""
    import subprocess
    import sys

    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    script = (
        "import sys\n"
        "from cfc_dsl.runtime.build import loops\n"
        "from cfc_dsl.runtime.solvers import cgloop, cloop\n"
        "assert loops.loop_library('newton-cg', cgloop.SOURCE, cgloop.CDEF, cgloop.FLAGS)\n"
        "assert loops.loop_library('pgd', cloop.SOURCE, cloop.CDEF)\n"
        "print('pycparser' in sys.modules)\n")
    env = {**__import__("os").environ, "CFC_CACHE_DIR": str(folder)}
    env.pop("CFC_C_LOOPS", None)

    def run(umask: int = 0o022) -> str:
        return subprocess.run([sys.executable, "-c", script], env=env, check=True,
                              capture_output=True, text=True,
                              preexec_fn=lambda: __import__("os").umask(umask)).stdout.strip()

    # built under a group-writable umask: the ABI modules are still written 0644, so the
    # next run accepts them (with 0664 they were refused and parsed again on every run)
    assert run(0o002) == "True"  # built here: the cdefs are parsed
    modules = sorted(folder.glob("loop-*-abi-*.py"))
    assert len(modules) == 2
    assert run() == "False"
    modules[0].write_text(modules[0].read_text() + "import os\n")  # damage
    assert run() == "True"  # the hash no longer matches: parsed and written again
    assert run() == "False"
