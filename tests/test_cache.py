"""The build stage and the kernel cache.

A miss then a hit; every key field matters; runtime data (sizes, parameter values, factor
ranges) never changes the key but an energy's formula does; a hit does not import SymPy;
concurrent compiles leave one entry; `cfc cache`; what happens without a C compiler; four
threads building at once; `CC` with words; compiler errors; byte-identical rebuilds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import cffi
import pytest

import cfc_dsl.runtime.build.pipeline
from cfc_dsl.codegen.render import render_model
from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.frontend import load_file, load_source
from cfc_dsl.model import Target
from cfc_dsl.runtime.build import cache
from cfc_dsl.runtime.build.pipeline import build, cache_key
from cfc_dsl.runtime.build.toolchain import C_FLAGS, Toolchain, find_compiler
from conftest import EXAMPLES, ROOT, run_cfc

needs_cc = pytest.mark.skipif(find_compiler() is None,
                              reason="no C compiler found (install gcc or set CC)")

CHAIN = EXAMPLES / "chain.cfc"
FAKE_TC = Toolchain("/usr/bin/cc", "cc (fake) 1.0", C_FLAGS, "cpython-311-x86_64-linux-gnu")


def entry_dirs(root: Path) -> list[Path]:
    """Cache entries only: the cache folder also holds e.g. the parser's table cache."""
    return sorted(p for p in root.iterdir() if cache.is_entry_dir(p) and not p.name.startswith("."))


def temp_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("."))


# ---------------------------------------------------------------- (a) miss, then hit
@needs_cc
def test_miss_then_hit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "cache"
    monkeypatch.setenv("CFC_CACHE_DIR", str(root))
    assert cache.cache_dir() == root
    model = load_file(CHAIN)
    first = build(model)
    assert first.info.cache_hit is False
    second = build(model)
    assert second.info.cache_hit is True
    assert second.info.digest == first.info.digest
    assert second.info.path == first.info.path == root / first.info.digest
    assert entry_dirs(root) == [first.info.path]
    assert temp_dirs(root) == []
    meta = json.loads((first.info.path / "entry.json").read_text())
    assert meta["digest"] == first.info.digest
    assert meta["model"] == "chain"
    assert (first.info.path / "kernels.c").read_text() == render_model(model).source
    assert hasattr(second.lib, "cfc_eg_landau") and hasattr(second.lib, "cfc_e_quadratic")
    # a fresh load of the same model text is also a hit
    assert build(load_file(CHAIN)).info.cache_hit is True


# ---------------------------------------------------------------- (b) every key field counts
def _other(value: object) -> object:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, tuple):
        return (*value, "-x")
    raise TypeError(type(value))


BASE_KEY = cache.CacheKey(
    source_digest="0" * 64, generator="1" * 64, target="c", compiler="/usr/bin/cc", compiler_version="cc 12.2",
    flags=("-O3", "-std=c99"), cfc_version="0.1.0", schema=1, cffi_version="1.17.1",
    python_abi="cpython-311-x86_64-linux-gnu",
)


def test_every_key_field_changes_the_digest() -> None:
    base = BASE_KEY.digest()
    assert base == dataclasses.replace(BASE_KEY).digest()  # deterministic
    assert len(base) == 64 and int(base, 16) >= 0
    seen = {base}
    names = [f.name for f in dataclasses.fields(cache.CacheKey)]
    assert len(names) >= 9
    for name in names:
        changed = dataclasses.replace(BASE_KEY, **{name: _other(getattr(BASE_KEY, name))})
        digest = changed.digest()
        assert digest != base, f"changing {name} does not change the digest"
        seen.add(digest)
    assert len(seen) == len(names) + 1
    # values are tied to their field names: swapping two string fields changes the digest
    swapped = dataclasses.replace(BASE_KEY, compiler=BASE_KEY.compiler_version,
                                  compiler_version=BASE_KEY.compiler)
    assert swapped.digest() != base
    # flag order matters to a compiler, so it matters to the key
    assert dataclasses.replace(BASE_KEY, flags=("-std=c99", "-O3")).digest() != base


def test_build_key_uses_every_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """`cfc_dsl.runtime.build.pipeline.cache_key` fills each field from the thing it names."""
    model = load_file(CHAIN)
    base = cache_key(model, Target.C, FAKE_TC)
    assert base.source_digest == model.kernel_spec_digest()
    assert base.target == "c"
    assert (base.compiler, base.compiler_version, base.flags, base.python_abi) == \
        (FAKE_TC.compiler, FAKE_TC.version, FAKE_TC.flags, FAKE_TC.python_abi)
    assert base.cffi_version == cffi.__version__
    assert base.schema == cache.CACHE_SCHEMA
    digests = {base.digest()}
    for field, value in (("compiler", "/usr/bin/clang"), ("version", "cc (fake) 2.0"),
                         ("flags", (*C_FLAGS, "-march=native")), ("python_abi", "cpython-312")):
        tc = dataclasses.replace(FAKE_TC, **{field: value})
        digests.add(cache_key(model, Target.C, tc).digest())
    digests.add(cache_key(model, Target.CUDA, FAKE_TC).digest())
    monkeypatch.setattr(cfc_dsl.runtime.build.pipeline, "__version__", "99.0.0")
    digests.add(cache_key(model, Target.C, FAKE_TC).digest())
    monkeypatch.undo()
    monkeypatch.setattr(cache, "CACHE_SCHEMA", cache.CACHE_SCHEMA + 1)
    digests.add(cache_key(model, Target.C, FAKE_TC).digest())
    monkeypatch.undo()
    monkeypatch.setattr(cffi, "__version__", "0.0.1")
    digests.add(cache_key(model, Target.C, FAKE_TC).digest())
    monkeypatch.undo()
    assert len(digests) == 9
    assert cache_key(model, Target.C, FAKE_TC).digest() == base.digest()


# ---------------------------------------------------------------- (c) what the key ignores
USER_MODEL = """
# a chain with user energies, one calling another
model keyed
size N = 64
param a = -0.5
param w = 0.8
var eta[N] in [0, 1] = 0.1
energy inner(x; s = 1) = s*x^2
energy couple(x, y; w = 1) = w*(x - y)^2 + inner(x - y)
factor local[i in 0..N]  = landau(eta[i]; a = a, b = 1.0)
factor link[i in 0..N-1] = couple(eta[i], eta[i+1]; w = w)
"""

SAME_KEY = {
    "size default": ("size N = 64", "size N = 1000"),
    "param value": ("param a = -0.5", "param a = 0.25"),
    "second param value": ("param w = 0.8", "param w = 3"),
    "factor range": ("factor link[i in 0..N-1]", "factor link[i in 1..N-2 if i % 2 == 0]"),
    "factor arguments": ("landau(eta[i]; a = a, b = 1.0)", "landau(eta[i]; a = 0.1, b = 2.0)"),
    "variable bounds and initial value": ("var eta[N] in [0, 1] = 0.1",
                                          "var eta[N] in [-1, 2] = 0.7"),
    "comment": ("# a chain with user energies, one calling another", "# another comment"),
    "weight": ("w = w)\n", "w = w)\nweight link = 0.5\n"),
}

NEW_KEY = {
    "energy formula": ("w*(x - y)^2 + inner", "w*(x - y)^4 + inner"),
    "called energy formula": ("s*x^2", "s*x^2 + x"),
    "called energy default": ("inner(x; s = 1)", "inner(x; s = 2)"),
    "energy parameter default": ("couple(x, y; w = 1)", "couple(x, y; w = 2)"),
    "stdlib energy used": ("= landau(eta[i]; a = a, b = 1.0)", "= order(eta[i]; a = a, b = 1.0)"),
    "model name": ("model keyed", "model keyed2"),
}


def _key(text: str) -> str:
    return cache_key(load_source(text, "keyed.cfc"), Target.C, FAKE_TC).digest()


@pytest.mark.parametrize("case", sorted(SAME_KEY))
def test_runtime_data_does_not_change_the_key(case: str) -> None:
    old, new = SAME_KEY[case]
    assert old in USER_MODEL
    changed = USER_MODEL.replace(old, new, 1)
    assert _key(changed) == _key(USER_MODEL), f"changing the {case} changes the cache key"
    # the key is sound only if the generated source is the same too
    assert render_model(load_source(changed, "keyed.cfc")) == \
        render_model(load_source(USER_MODEL, "keyed.cfc"))


@pytest.mark.parametrize("case", sorted(NEW_KEY))
def test_energy_changes_change_the_key(case: str) -> None:
    old, new = NEW_KEY[case]
    assert old in USER_MODEL
    changed = USER_MODEL.replace(old, new, 1)
    assert _key(changed) != _key(USER_MODEL), f"changing the {case} keeps the cache key"


def test_example_sizes_do_not_change_the_key() -> None:
    text = CHAIN.read_text()
    assert "size N = 64" in text and "param a = -0.5" in text
    base = _key(text)
    assert _key(text.replace("size N = 64", "size N = 100000")) == base
    assert _key(text.replace("param a = -0.5", "param a = -0.9")) == base
    assert _key(text.replace("0..N-1", "0..N-2")) == base
    assert _key(text.replace("w*(x - y)^2", "w*(x - y)^2")) == base


# ---------------------------------------------------------------- (d) a hit without SymPy
_RUN_WITHOUT_SYMPY = textwrap.dedent("""
    import io, json, sys
    from contextlib import redirect_stdout
    from cfc_dsl.cli.main import main
    out = io.StringIO()
    with redirect_stdout(out):
        rc = main(["run", "examples/chain.cfc", "--json"])
    assert rc == 0, rc
    payload = json.loads(out.getvalue())
    assert payload["compile"]["backend"] == "c", payload["compile"]
    assert payload["compile"]["cache"] == "hit", payload["compile"]
    loaded = sorted(m for m in sys.modules if m == "sympy" or m.startswith("sympy."))
    assert not loaded, "a cache hit imported " + ", ".join(loaded[:5])
    print("ok", payload["energy"])
""")


@needs_cc
def test_cache_hit_does_not_import_sympy() -> None:
    build(load_file(CHAIN))  # warm the session's cache (a hit if another test compiled chain)
    out = subprocess.run([sys.executable, "-c", _RUN_WITHOUT_SYMPY], capture_output=True,
                         text=True, cwd=ROOT, env=dict(os.environ), timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok ")


# ---------------------------------------------------------------- (e) a compile race
_RACER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from cfc_dsl.frontend import load_source
    from cfc_dsl.runtime.build.pipeline import build
    text, sync, i = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    model = load_source(text, "race.cfc")
    (sync / f"ready-{i}").touch()
    deadline = time.monotonic() + 120
    while not (sync / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit("never started")
        time.sleep(0.002)
    kernels = build(model)
    print(json.dumps({"digest": kernels.info.digest, "hit": kernels.info.cache_hit,
                      "lib": hasattr(kernels.lib, "cfc_eg_racer")}))
""")


@needs_cc
def test_concurrent_compiles_leave_one_entry(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    sync = tmp_path / "sync"
    sync.mkdir()
    tag = uuid.uuid4().hex[:12]
    text = (f"model race_{tag}\nvar x[4] in [0, 1] = 0.5\n"
            f"energy racer(u, v; w = 1) = w*(u - v)^2 + relu(u - 0.5)^2\n"
            f"factor f[i in 0..3] = racer(x[i], x[i+1])\n")
    env = dict(os.environ, CFC_CACHE_DIR=str(root))
    n = 8
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, text, str(sync), str(i)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=ROOT, env=env) for i in range(n)]
    try:
        deadline = time.monotonic() + 120
        while len(list(sync.glob("ready-*"))) < n:
            assert all(p.poll() is None for p in procs), "a racer died before the start"
            assert time.monotonic() < deadline, "the racers did not get ready"
            time.sleep(0.01)
        (sync / "go").touch()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert len({r["digest"] for r in results}) == 1
    assert all(r["lib"] for r in results)
    assert sum(not r["hit"] for r in results) == 1, "exactly one process should have compiled"
    entries = entry_dirs(root)
    assert [e.name for e in entries] == [results[0]["digest"]]
    assert (entries[0] / "entry.json").is_file()
    assert temp_dirs(root) == [], "temporary build folders were left behind"


# ---------------------------------------------------------------- (f) cfc cache
@needs_cc
def test_cache_command(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    env = {"CFC_CACHE_DIR": str(root)}

    out = run_cfc("cache", "dir", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(root)

    out = run_cfc("cache", "list", env=env)
    assert out.returncode == 0, out.stderr
    assert "empty" in out.stdout

    compiled = run_cfc("compile", str(CHAIN), "--json", env=env)
    assert compiled.returncode == 0, compiled.stderr
    digest = json.loads(compiled.stdout)["digest"]
    assert json.loads(compiled.stdout)["cache"] == "miss"

    out = run_cfc("cache", "list", env=env)
    assert out.returncode == 0, out.stderr
    assert digest[:16] in out.stdout and "chain" in out.stdout
    rows = json.loads(run_cfc("cache", "list", "--json", env=env).stdout)
    assert len(rows) == 1
    assert rows[0]["digest"] == digest and rows[0]["model"] == "chain"
    assert rows[0]["energies"] == ["landau", "quadratic"] and rows[0]["bytes"] > 0

    out = run_cfc("cache", "clear", env=env)
    assert out.returncode == 0, out.stderr
    assert "removed 1 cache entry" in out.stdout
    assert entry_dirs(root) == [] and temp_dirs(root) == []


# ---------------------------------------------------------------- (g) no C compiler
NO_CC = "/nonexistent/cc"


def test_compile_without_a_compiler_is_an_environment_error(tmp_path: Path) -> None:
    env = {"CC": NO_CC, "CFC_CACHE_DIR": str(tmp_path / "cache")}
    out = run_cfc("compile", str(CHAIN), env=env)
    assert out.returncode == 3, out.stderr
    assert NO_CC in out.stderr
    assert "hint:" in out.stderr and "--backend python" in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout == ""


def test_run_without_a_compiler_falls_back_to_python(tmp_path: Path) -> None:
    env = {"CC": NO_CC, "CFC_CACHE_DIR": str(tmp_path / "cache")}
    out = run_cfc("run", str(CHAIN), "--json", env=env)
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["compile"]["backend"] == "python"
    assert payload["converged"] is True
    assert "note" in out.stderr and "Python" in out.stderr
    assert not (tmp_path / "cache").exists() or entry_dirs(tmp_path / "cache") == []


def test_run_with_backend_c_without_a_compiler_fails(tmp_path: Path) -> None:
    env = {"CC": NO_CC, "CFC_CACHE_DIR": str(tmp_path / "cache")}
    out = run_cfc("run", str(CHAIN), "--json", "--backend", "c", env=env)
    assert out.returncode == 3, out.stderr
    assert NO_CC in out.stderr and "hint:" in out.stderr
    assert out.stdout == ""


# ---------------------------------------------------------------- (h) builds in threads
def _fd_file(fd: int) -> tuple[int, int, int]:
    """(device, inode, links) of what fd points at: links is 0 once the file is deleted."""
    st = os.fstat(fd)
    return st.st_dev, st.st_ino, st.st_nlink


def _thread_model(tag: str, i: int) -> str:
    return (f"model threads_{tag}_{i}\nvar x[4] in [0, 1] = 0.5\n"
            f"energy e{i}(u, v; w = 1) = w*(u - v)^2 + {i + 1}*u^4\n"
            f"factor f[i in 0..3] = e{i}(x[i], x[i+1])\n")


def _energy(kernels, name: str, x: list[float], idx: list[object]) -> float:  # type: ignore[no-untyped-def]
    """cfc_e_<name> over the instances whose slot indices are `idx`, every w = 1."""
    ffi = kernels.ffi
    weights = ffi.new("double[]", [1.0] * len(x))
    return float(getattr(kernels.lib, f"cfc_e_{name}")(3, *idx, weights, ffi.new("double[]", x)))


@needs_cc
def test_four_threads_build_four_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capfd: pytest.CaptureFixture[str]) -> None:
    """Builds touch no process-wide state: fds 1 and 2, os.environ and the cwd stay put."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("CFC_CACHE_DIR", str(tmp_path / "cache"))
    tag = uuid.uuid4().hex[:8]
    models = [load_source(_thread_model(tag, i), f"threads{i}.cfc") for i in range(4)]
    fds, env, cwd = {fd: _fd_file(fd) for fd in (1, 2)}, dict(os.environ), os.getcwd()
    start = threading.Barrier(len(models))

    def compile_one(model):  # type: ignore[no-untyped-def]
        start.wait(timeout=120)
        return build(model)

    with ThreadPoolExecutor(len(models)) as pool:
        results = list(pool.map(compile_one, models))
    assert {fd: _fd_file(fd) for fd in (1, 2)} == fds
    assert dict(os.environ) == env and os.getcwd() == cwd
    os.write(1, b"fd 1 still reaches the test\n")
    os.write(2, b"fd 2 still reaches the test\n")
    out, err = capfd.readouterr()
    assert "fd 1 still reaches the test" in out and "fd 2 still reaches the test" in err
    assert len({r.info.digest for r in results}) == 4
    assert not any(r.info.cache_hit for r in results)
    x = [0.1, 0.4, 0.2, 0.9]
    for i, kernels in enumerate(results):
        # the oracle: the energy's formula, summed over the three instances by hand
        expected = sum((u - v) ** 2 + (i + 1) * u ** 4 for u, v in zip(x, x[1:], strict=False))
        ffi = kernels.ffi
        idx = [ffi.new("int64_t[]", [0, 1, 2]), ffi.new("int64_t[]", [1, 2, 3])]
        assert _energy(kernels, f"e{i}", x, idx) == pytest.approx(expected, rel=1e-12)
    assert len(entry_dirs(tmp_path / "cache")) == 4 and temp_dirs(tmp_path / "cache") == []


# ---------------------------------------------------------------- (i) CC with words, errors
@needs_cc
@pytest.mark.skipif(shutil.which("ccache") is None or shutil.which("gcc") is None,
                    reason="ccache or gcc not installed (apt-get install ccache gcc)")
def test_cc_with_words_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CC="ccache gcc" is a command, not a program name: every word of it is used and keyed."""
    monkeypatch.setenv("CFC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CCACHE_DIR", str(tmp_path / "ccache"))
    monkeypatch.setenv("CC", "ccache gcc")
    model = load_file(CHAIN)
    kernels = build(model)
    ccache = shutil.which("ccache")
    assert kernels.info.toolchain.compiler == f"{ccache} gcc"
    assert kernels.info.toolchain.command == [ccache, "gcc"]
    meta = json.loads((kernels.info.path / "entry.json").read_text())
    assert meta["key"]["compiler"] == f"{ccache} gcc"
    assert (kernels.info.path / "build.log").read_text().startswith(f"{ccache} gcc ")
    assert hasattr(kernels.lib, "cfc_eg_landau")
    assert (tmp_path / "ccache").is_dir(), "ccache did not run"
    monkeypatch.setenv("CC", "gcc")
    assert build(model).info.digest != kernels.info.digest  # another compiler, another key


@needs_cc
def test_compiler_errors_are_in_the_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compiler = find_compiler()
    assert compiler is not None
    monkeypatch.setenv("CFC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", f"{compiler} -include cfc_no_such_header.h")
    with pytest.raises(CfcError) as info:
        build(load_file(CHAIN))
    assert info.value.kind is ErrorKind.ENVIRONMENT
    assert "failed to build the kernels of 'chain'" in info.value.message
    hint = info.value.hint or ""
    assert "cfc_no_such_header.h" in hint and "--backend python" in hint
    assert entry_dirs(tmp_path / "cache") == [] and temp_dirs(tmp_path / "cache") == []


@needs_cc
def test_rebuilding_gives_identical_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """-g0 and a compiler run inside the staging folder: no build path reaches the library."""
    model = load_file(CHAIN)
    built = []
    for name in ("one", "two"):
        monkeypatch.setenv("CFC_CACHE_DIR", str(tmp_path / name))
        info = build(model).info
        assert info.cache_hit is False
        meta = json.loads((info.path / "entry.json").read_text())
        built.append((info.path / str(meta["library"])).read_bytes())
    assert built[0] == built[1]
