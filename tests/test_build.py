"""The C build: one compiler run, a plain library opened by cffi in ABI mode (issue 12).

The entry holds no C wrapper and the compiler runs once, with -Werror; cffi's ABI module is
run from its text, so opening an entry writes nothing into it; a damaged or missing ABI
module (garbage, missing, or edited, even with its recorded sha256 updated) is quarantined and
rebuilt like a damaged library, and its code never runs: only cffi's literal FFI(...) call is
read; the -O level changes no bit of
an energy or a gradient; the compiler's version is remembered until the compiler changes.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

import cfc_dsl
from cfc_dsl.frontend import load_source
from cfc_dsl.runtime.build import cache, heal, pipeline, targets, toolchain
from cfc_dsl.runtime.build.targets import ABI_SUFFIX
from cfc_dsl.runtime.build.toolchain import WARNING_FLAGS, find_compiler
from conftest import ROOT

pytestmark = pytest.mark.skipif(find_compiler() is None,
                                reason="no C compiler found (install gcc or set CC)")

# smooth and piecewise energies, with libm calls, so that an -O level has something to change
MODEL = """\
model build_{tag}
size N = 40
var x[N] in [-2, 2] = 0.3
energy soft(u, v; w = 1) = w*softplus(u - v) + sqrt(u^2 + 1)
energy bump(u; a = 1) = a*exp(-u^2) + relu(u - 0.5)^2
factor s[i in 0..N-1] = soft(x[i], x[i+1])
factor b[i in 0..N] = bump(x[i]; a = 0.5)
"""


def _model(tag: str | None = None) -> cfc_dsl.Model:
    return cfc_dsl.loads(MODEL.format(tag=tag or uuid.uuid4().hex[:8]))


def test_one_compiler_run_with_werror_and_no_wrapper(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFC_CACHE_DIR", str(tmp_path / "cache"))
    kernels = pipeline.build(load_source(MODEL.format(tag="one"), "one.cfc"))
    entry = kernels.info.path
    runs = [line for line in (entry / "build.log").read_text().splitlines()
            if line.startswith(shlex.join(kernels.info.toolchain.command))]
    assert len(runs) == 1, runs  # kernels.c straight into the library: no wrapper, no link
    argv = shlex.split(runs[0])
    assert set(WARNING_FLAGS) <= set(argv) and "kernels.c" in argv
    meta = json.loads((entry / "entry.json").read_text())
    assert argv[argv.index("-o") + 1] == meta["library"]
    assert (entry / (meta["module"] + ABI_SUFFIX)).is_file()
    assert sorted(p.name for p in entry.glob("*.c")) == ["kernels.c"]
    assert not list(entry.glob("*.o"))
    assert kernels.lib.cfc_openmp() in (0, 1)


def test_opening_an_entry_writes_nothing_into_it(tmp_path: Path) -> None:
    """The ABI module is run from its text: no __pycache__ appears in the entry, even when
    the interpreter writes bytecode."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["CFC_CACHE_DIR"] = str(tmp_path / "cache")
    for _ in range(2):  # a miss, then a hit in a new process
        out = subprocess.run([sys.executable, "-c", _EVAL, MODEL.format(tag="pyc")], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["hit"] is True
    [entry] = [p for p in (tmp_path / "cache").iterdir() if cache.is_entry_dir(p)]
    assert not list(entry.rglob("__pycache__")) and not list(entry.rglob("*.pyc"))


_EVAL = textwrap.dedent("""
    import json, sys
    import numpy as np
    from cfc_dsl.frontend import load_source
    from cfc_dsl.runtime.build.pipeline import build
    k = build(load_source(sys.argv[1], "m.cfc"))
    ffi = k.ffi
    x = np.array([0.1, -0.4, 0.7])
    e = k.lib.cfc_e_bump(3, ffi.new("int64_t[]", [0, 1, 2]), ffi.new("double[]", [1.0] * 3),
                         ffi.from_buffer("double[]", x))
    print(json.dumps({"hit": k.info.cache_hit, "energy": e}))
""")


def _garbage(module: Path) -> None:
    module.write_text("this is not Python (\n")


def _missing(module: Path) -> None:
    module.unlink()


_MARKER = "CFC_ABI_MODULE_RAN"


def _edited(module: Path) -> None:
    """Code added to the module, entry.json left as it was: the sha256 catches it."""
    marker = module.parent.parent / _MARKER
    module.write_text(module.read_text() + f"open({str(marker)!r}, 'w').close()\n")


def _edited_and_rehashed(module: Path) -> None:
    """Code added and the recorded sha256 updated to match (someone who can write the entry):
    the module is still never run, because only cffi's literal FFI(...) call is read."""
    _edited(module)
    meta_file = module.parent / "entry.json"
    meta = json.loads(meta_file.read_text())
    meta["abi_sha256"] = heal.file_sha256(module)
    meta_file.write_text(json.dumps(meta))


@pytest.mark.parametrize("damage", [_garbage, _missing, _edited, _edited_and_rehashed],
                         ids=["garbage", "missing", "edited", "edited-rehashed"])
def test_a_damaged_abi_module_is_rebuilt(damage, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = dict(os.environ, CFC_CACHE_DIR=str(tmp_path / "cache"))
    text = MODEL.format(tag="heal")

    def run() -> tuple[dict[str, object], str]:
        out = subprocess.run([sys.executable, "-c", _EVAL, text], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout), out.stderr

    first, _ = run()
    [entry] = [p for p in (tmp_path / "cache").iterdir()
               if cache.is_entry_dir(p) and not p.name.startswith(".")]
    meta = json.loads((entry / "entry.json").read_text())
    damage(entry / (meta["module"] + ABI_SUFFIX))
    healed, stderr = run()
    assert healed["hit"] is False and "cfc: note:" in stderr
    # the oracle, by hand: a exp(-u^2) + relu(u - 0.5)^2 with a = 1 for each of the three
    x = np.array([0.1, -0.4, 0.7])
    oracle = float(np.sum(np.exp(-x ** 2) + np.maximum(x - 0.5, 0.0) ** 2))
    assert healed["energy"] == pytest.approx(oracle, rel=1e-12) == first["energy"]
    assert run()[0]["hit"] is True
    assert not (tmp_path / "cache" / _MARKER).exists(), "code in the ABI module was run"


def test_the_abi_module_is_read_as_literals_only() -> None:
    """What cffi writes is accepted; any other statement or a non-literal argument is not."""
    good = ("import _cffi_backend\n\nffi = _cffi_backend.FFI('_m', _version = 0x2601, "
            "_types = b'\\x00', _globals = (b'f', 0,),)\n")
    assert targets.abi_arguments(good) == (("_m",), {"_version": 0x2601, "_types": b"\x00",
                                                      "_globals": (b"f", 0)})
    for bad in (good + "import os\n",
                good.replace("'_m'", "__import__('os').getcwd()"),
                good.replace("_cffi_backend.FFI", "_cffi_backend.other"),
                "import os\nffi = _cffi_backend.FFI('_m')\n",
                good.replace("_version = 0x2601", "**{'_version': 1}")):
        with pytest.raises(ValueError):
            targets.abi_arguments(bad)


def test_the_o_level_changes_no_bit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without -ffast-math and with -std=c99 (no contraction) every level computes the same
    IEEE operations: -O1 (the build's) and -O3 give identical energies and gradients."""
    assert toolchain.C_FLAGS[0] == "-O1"
    model = _model("olevel")
    rng = np.random.default_rng(3)
    x = rng.uniform(-2, 2, 40)
    results = []
    for level in ("-O1", "-O3"):
        monkeypatch.setenv("CFC_CACHE_DIR", str(tmp_path / level))
        monkeypatch.setattr(toolchain, "C_FLAGS", (level, *toolchain.C_FLAGS[1:]))
        backend = model.compile().bind(threads=1).backend
        assert pipeline.toolchain().flags[0] == level
        f, _, g = backend.energy_and_grad(x)
        results.append((f, g.copy()))
    assert results[0][0] == results[1][0]
    assert np.array_equal(results[0][1], results[1][1])


def test_the_compiler_version_is_remembered_until_the_compiler_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache-hit run does not start `cc --version`: the answer is kept in the cache folder
    with the program's fingerprint, and a changed program is asked again."""
    monkeypatch.setenv("CFC_CACHE_DIR", str(tmp_path / "cache"))
    calls = tmp_path / "calls"
    fake = tmp_path / "fakecc"

    def write(version: str) -> None:
        fake.write_text(f"#!/bin/sh\necho x >> {calls}\necho 'fakecc {version}'\n")
        fake.chmod(0o755)

    def ask() -> str:
        toolchain.compiler_version.cache_clear()  # a new process, as far as the memo goes
        return toolchain.compiler_version(str(fake))

    write("1.0")
    assert ask() == "fakecc 1.0" and ask() == "fakecc 1.0"
    assert calls.read_text().count("x") == 1
    write("2.0.1")  # an upgrade: another size (and mtime)
    assert ask() == "fakecc 2.0.1" and ask() == "fakecc 2.0.1"
    assert calls.read_text().count("x") == 2
    toolchain.compiler_version.cache_clear()
