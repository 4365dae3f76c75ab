"""Translation units (codegen/render.py): the C kernels split by whole energies for a parallel
build. Each unit compiles alone with -Wall -Wextra -Werror; the units linked into one library
give the same bits as the one-file source compiled alone (energies, gradients, HVP and the
Hessian diagonal, serial and threaded); the split depends on the rendered text only.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import cffi
import numpy as np
import pytest

import cfc_dsl as cfc
from cfc_dsl.codegen import render as render_mod
from cfc_dsl.codegen.render import RenderedSource, render_model, split
from cfc_dsl.runtime.backends import threads as threads_mod
from cfc_dsl.runtime.backends.native import CBackend
from cfc_dsl.runtime.build.openmp import OPENMP_FLAGS
from cfc_dsl.runtime.build.toolchain import C_FLAGS, WARNING_FLAGS, find_compiler, toolchain
from tests.conftest import EXAMPLES

needs_cc = pytest.mark.skipif(find_compiler() is None,
                              reason="no C compiler found (install gcc or set CC)")

# an unused slot, an energy without any gradient, one without parameters: copies with no
# terms to add, which the drivers skip
EDGES = """
model unit_edges
var x[40] in [0, 1] = 0.1
var y[40] in [0, 1] = 0.1
energy ignores_v(u, v; c = 1) = c*u^3
energy constant(u; c = 1) = c
energy no_params(u, v) = (u - v)^2 + relu(v - u)^2
factor f[i in 0..40] = ignores_v(x[i], y[(7 * i) % 40])
factor g[i in 0..40] = constant(x[i]; c = 2)
factor h[i in 0..40] = no_params(y[i], x[(3 * i) % 40])
"""


def _cc(args: list[str], cwd: Path) -> None:
    out = subprocess.run([*toolchain().command, *args], cwd=cwd, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def _openmp(wanted: bool) -> list[str]:
    return [f for f in toolchain().flags if f in OPENMP_FLAGS] if wanted else []


def _libraries(r: RenderedSource, tmp: Path) -> tuple[Path, Path]:
    """The one-file source and the units, each compiled with the warnings as errors; the units
    (each with -c alone, -fopenmp only where asked) linked into a second library."""
    (tmp / "single.c").write_text(r.source)
    _cc([*C_FLAGS, *WARNING_FLAGS, *_openmp(True), "-fPIC", "-shared", "single.c", "-o",
         "single.so", "-lm"], tmp)
    objects = []
    for unit in r.units:
        (tmp / unit.name).write_text(unit.source)
        obj = Path(unit.name).with_suffix(".o").name
        _cc([*C_FLAGS, *WARNING_FLAGS, *_openmp(unit.openmp), "-fPIC", "-c", unit.name, "-o",
             obj], tmp)
        objects.append(obj)
    _cc([*C_FLAGS, *_openmp(True), "-fPIC", "-shared", *objects, "-o", "units.so", "-lm"], tmp)
    return tmp / "single.so", tmp / "units.so"


def _evaluations(backend: CBackend, x: np.ndarray) -> list[np.ndarray]:
    f, fam, g = backend.energy_and_grad(x)
    e, efam = backend.energy(x)
    _, _, rows = backend.family_grads(x)
    v = np.cos(np.arange(x.size) * 0.7)
    return [np.float64(f), fam, g, np.float64(e), efam, rows, backend.hvp(x, v),
            backend.hess_diag(x)]


def _same_kernels(model: cfc.Model, bind: dict, tmp: Path,  # type: ignore[type-arg]
                  monkeypatch: pytest.MonkeyPatch) -> RenderedSource:
    r = render_model(model)
    assert len(r.units) > 2, [u.name for u in r.units]
    single, units = _libraries(r, tmp)
    bound = model.compile().bind(**bind).bound
    x = np.random.default_rng(2).uniform(bound.lower, bound.upper)
    ffi = cffi.FFI()
    ffi.cdef(r.cdef)
    one, many = ffi.dlopen(str(single)), ffi.dlopen(str(units))
    for name in (line.split("(")[0].split()[-1].lstrip("*") for line in r.cdef.splitlines()
                 if "(" in line and not line.startswith("typedef")):
        getattr(many, name)  # every declared function is defined by the units too
    for below in (10 ** 12, 0):  # the serial kernels, then the threaded drivers
        monkeypatch.setattr(threads_mod, "SERIAL_BELOW", below)
        for t in (1, 2):
            a = _evaluations(CBackend(bound, ffi, one, threads=t), x)
            b = _evaluations(CBackend(bound, ffi, many, threads=t), x)
            assert all(u is not None for u in CBackend(bound, ffi, many)._threaded) == (below == 0)
            for u, w in zip(a, b, strict=True):
                assert np.asarray(u).tobytes() == np.asarray(w).tobytes()
    return r


@needs_cc
@pytest.mark.parametrize("name", ["sequence_redemption", "grid_percolation"])
def test_units_give_the_bits_of_the_single_file(name: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_mod, "UNIT_BYTES", 2_000)  # one energy per unit
    model = cfc.load(EXAMPLES / f"{name}.cfc")
    names = {d.name for d in model.data}
    bind = {"data": {"shortcuts": EXAMPLES / "grid_shortcuts.npy"}} if "shortcuts" in names else {}
    r = _same_kernels(model, bind, tmp_path, monkeypatch)
    assert [u.openmp for u in r.units] == [True] + [False] * (len(r.units) - 1)
    assert "#pragma omp" in r.units[0].source
    assert all("#pragma omp" not in u.source for u in r.units[1:])


@needs_cc
def test_units_with_slots_that_add_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cfc_dsl.runtime.bind import copies

    monkeypatch.setattr(render_mod, "UNIT_BYTES", 2_000)
    monkeypatch.setattr(copies, "CHUNK", 8)  # 40 variables: 5 tasks per copy
    path = tmp_path / "unit_edges.cfc"
    path.write_text(EDGES)
    _same_kernels(cfc.load(path), {}, tmp_path, monkeypatch)


def test_small_models_are_one_unit_the_source_itself() -> None:
    r = render_model(cfc.load(EXAMPLES / "chain.cfc"))
    assert [(u.name, u.openmp) for u in r.units] == [("kernels.c", True)]
    assert r.units[0].source == r.source


def test_split_is_whole_energies_in_order_and_bounded() -> None:
    rng = np.random.default_rng(0)
    for sizes in ([5_000] * 3, [40_000] * 20, [1_000] * 900, rng.integers(100, 90_000, 200).tolist(),
                  [200_000, 10, 10, 200_000]):
        groups = split(sizes)
        assert [i for g in groups for i in g] == list(range(len(sizes)))  # all, in order
        assert 1 <= len(groups) <= render_mod.MAX_UNITS
        total = sum(sizes)
        if total < render_mod.UNIT_BYTES:
            assert len(groups) == 1
    assert split([40_000] * 4, 32_000) == [range(0, 1), range(1, 2), range(2, 3), range(3, 4)]
    assert split([10_000] * 7, 32_000) == [range(0, 4), range(4, 7)]  # 40 KB, then 30 KB
    assert split([20_000, 20_000, 3_000], 32_000) == [range(0, 3)]  # a small last one joins
    assert split([10_000] * 7, 16_000) == [range(0, 2), range(2, 4), range(4, 6), range(6, 7)]


def test_units_do_not_depend_on_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same files on 1 core and on 64: the split reads the text, never the machine."""
    import os

    model = cfc.load(EXAMPLES / "sequence_redemption.cfc")
    seen = []
    for cores in (1, 64):
        monkeypatch.setattr(os, "cpu_count", lambda cores=cores: cores)
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, cores=cores: set(range(cores)),
                            raising=False)
        seen.append(render_model(model).units)
    assert seen[0] == seen[1]
    assert len(seen[0]) >= 3  # sequence_redemption is split at the default size
