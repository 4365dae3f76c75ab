"""The C build in units (runtime/build/units.py): compiled at once, linked, the same kernels.

A model the renderer splits is compiled unit by unit with `-c` (-fopenmp only where a unit
needs it, -Werror on each), then linked once; the entry keeps the one-file kernels.c, lists
its units and holds no object file; its kernels give the same bits as the one-file build.
A unit the compiler rejects is a bug in cfc that names the model, with every unit's output in
build.log, in unit order, and no object left behind.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import uuid
from pathlib import Path

import cffi
import numpy as np
import pytest

from cfc_dsl.codegen.render import Unit
from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.frontend import load_source
from cfc_dsl.model import Target
from cfc_dsl.runtime.build import pipeline, units
from cfc_dsl.runtime.build.openmp import OPENMP_FLAGS
from cfc_dsl.runtime.build.targets import C_TARGET
from cfc_dsl.runtime.build.toolchain import SHARED_FLAGS, WARNING_FLAGS, find_compiler, toolchain

pytestmark = pytest.mark.skipif(find_compiler() is None,
                                reason="no C compiler found (install gcc or set CC)")

A = "int cfc_twice(int x) { return 2 * x; }\n"
B = "int cfc_twice(int x);\nint cfc_quad(int x) { return cfc_twice(cfc_twice(x)); }\n"
OMP = ("int cfc_omp(void)\n{\n#ifdef _OPENMP\n    return 1;\n#else\n    return 0;\n#endif\n}\n")
CDEF = "int cfc_twice(int x); int cfc_quad(int x); int cfc_omp(void);"


def _runs(log: str, tc_command: list[str]) -> list[list[str]]:
    head = shlex.join(tc_command)
    return [shlex.split(line) for line in log.splitlines() if line.startswith(head)]


def test_units_compile_apart_and_link_into_one_library(tmp_path: Path) -> None:
    tc = toolchain()
    jobs = [Unit("u_0.c", OMP, True), Unit("u_1.c", A, False), Unit("u_2.c", B, False)]
    units.compile_units("m", "the C compiler", "advice", tc, jobs, "lib.so", tmp_path, "build.log")
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    lib = ffi.dlopen(str(tmp_path / "lib.so"))
    assert (lib.cfc_twice(3), lib.cfc_quad(3)) == (6, 12)
    assert lib.cfc_omp() == (1 if set(OPENMP_FLAGS) <= set(tc.flags) else 0)
    runs = _runs((tmp_path / "build.log").read_text(), tc.command)
    compiles, link = runs[:-1], runs[-1]
    assert [r[r.index("-c") + 1] for r in compiles] == ["u_0.c", "u_1.c", "u_2.c"]  # unit order
    for run, job in zip(compiles, jobs, strict=True):
        assert set(WARNING_FLAGS) <= set(run) and "-shared" not in run
        assert (set(OPENMP_FLAGS) <= set(run)) == (job.openmp and set(OPENMP_FLAGS) <= set(tc.flags))
    assert "-c" not in link and link[link.index("-o") + 1] == "lib.so"
    assert [a for a in link if a.endswith(".o")] == ["u_0.o", "u_1.o", "u_2.o"]
    assert not list(tmp_path.glob("*.o")) and not list(tmp_path.glob("build.log.*"))


def test_a_rejected_unit_is_a_bug_in_cfc_and_leaves_no_object(tmp_path: Path) -> None:
    tc = toolchain()
    jobs = [Unit("u_0.c", A, False), Unit("u_1.c", "int cfc_bad(void) { return missing; }\n", False)]
    with pytest.raises(CfcError) as info:
        units.compile_units("broken", "the C compiler", "advice", tc, jobs, "lib.so", tmp_path,
                            "build.log")
    assert info.value.kind is ErrorKind.ENVIRONMENT
    assert "rejected the code cfc generated for 'broken'" in info.value.message
    assert "missing" in (info.value.hint or "")
    log = (tmp_path / "build.log").read_text()
    assert log.index("u_0.c") < log.index("u_1.c") and "missing" in log
    assert not (tmp_path / "lib.so").exists() and not list(tmp_path.glob("*.o"))


def test_object_flags_drop_link_only_flags() -> None:
    tc = dataclasses.replace(toolchain(), flags=("-O1", *OPENMP_FLAGS, *SHARED_FLAGS))
    assert units.object_flags(tc, openmp=True) == ["-O1", *OPENMP_FLAGS, "-fPIC"]
    assert units.object_flags(tc, openmp=False) == ["-O1", "-fPIC"]


def _many_energies(tag: str, count: int = 14) -> str:
    lines = [f"model units_{tag}", "size N = 30", "var x[N] in [-2, 2] = 0.25"]
    for j in range(count):
        lines.append(f"energy e{j}(u, v; a = {j + 1}) = a*(u - v)^2 + {j + 2}*softplus(u*v - {j})"
                     f" + sqrt(u^2 + {j + 1})*exp(-v^2/{j + 2}) + relu(u + v - 0.{j + 1})^3")
        lines.append(f"factor f{j}[i in 0..N-2] = e{j}(x[i], x[i+1])")
    return "\n".join(lines) + "\n"


def _values(kernels: pipeline.CompiledKernels, names: list[str]) -> list[tuple[float, bytes]]:
    ffi, lib = kernels.ffi, kernels.lib
    rng = np.random.default_rng(7)
    n = 29
    x = rng.uniform(-2, 2, 30)
    s_u = np.arange(n, dtype=np.int64)
    s_v = s_u + 1
    out = []
    for j, name in enumerate(names):
        g = np.zeros(30)
        a = np.full(n, float(j + 1))
        energy = getattr(lib, f"cfc_eg_{name}")(
            n, ffi.cast("int64_t *", s_u.ctypes.data), ffi.cast("int64_t *", s_v.ctypes.data),
            ffi.cast("double *", a.ctypes.data), 1.0, ffi.cast("double *", x.ctypes.data),
            ffi.cast("double *", g.ctypes.data))
        out.append((energy, g.tobytes()))
    return out


def test_a_split_model_builds_in_units_with_the_one_file_bits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_source(_many_energies(uuid.uuid4().hex[:8]), "units.cfc")
    names = [e.name for e in model.used_energies]
    monkeypatch.setenv("CFC_CACHE_DIR", str(tmp_path / "split"))
    split = pipeline.build(model)
    entry = split.info.path
    meta = json.loads((entry / "entry.json").read_text())
    assert len(meta["units"]) > 1, "this model should be rendered as several units"
    assert sorted(p.name for p in entry.glob("kernels_*.c")) == sorted(meta["units"])
    assert (entry / "kernels.c").is_file() and not list(entry.glob("*.o"))
    runs = _runs((entry / "build.log").read_text(), split.info.toolchain.command)
    assert len(runs) == len(meta["units"]) + 1  # each unit, then the link
    # the same model built as one file (the target without its split) gives the same bits
    monkeypatch.setitem(pipeline.TARGETS, Target.C, dataclasses.replace(C_TARGET, split=False))
    monkeypatch.setenv("CFC_CACHE_DIR", str(tmp_path / "one"))
    pipeline._LOADED.clear()
    whole = pipeline.build(model)
    assert json.loads((whole.info.path / "entry.json").read_text())["units"] == []
    assert _values(split, names) == _values(whole, names)
