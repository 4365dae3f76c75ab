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
from collections.abc import Callable
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


# ---------------------------------------------------------------- (j) flags from the environment
SQ_MODEL = "model sq_{tag}\nvar x[2] in [0, 4] = 1\nenergy sq(u) = sqrt(u + 1)\nfactor f[i in 0..2] = sq(x[i])\n"


def _sq_energy(kernels, x: list[float]) -> float:  # type: ignore[no-untyped-def]
    ffi = kernels.ffi
    idx = ffi.new("int64_t[]", list(range(len(x))))
    return float(kernels.lib.cfc_e_sq(len(x), idx, ffi.new("double[]", x)))


@needs_cc
def test_flag_variables_do_not_reach_the_compiler(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """CFLAGS=-Dsqrt=cbrt (and CPATH, LDFLAGS, ...) must not poison the entry a plain run uses."""
    from cfc_dsl.runtime.build.compiler import IGNORED_ENV, compiler_env

    monkeypatch.setenv("CFC_CACHE_DIR", str(tmp_path / "cache"))
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "math.h").write_text("#include_next <math.h>\n#define sqrt cbrt\n")
    poison = {"CFLAGS": "-Dsqrt=cbrt", "CPPFLAGS": "-Dsqrt=cbrt", "LDFLAGS": "-Wl,--no-such-flag",
              "CPATH": str(shadow), "C_INCLUDE_PATH": str(shadow)}
    for name, value in poison.items():
        monkeypatch.setenv(name, value)
    assert not set(poison) & set(compiler_env()) and set(poison) <= IGNORED_ENV
    text = SQ_MODEL.format(tag=uuid.uuid4().hex[:8])
    model = load_source(text, "sq.cfc")
    x = [3.0, 0.0]
    oracle = 2.0 + 1.0  # sqrt(4) + sqrt(1); cbrt would give 1.587 + 1
    poisoned = build(model)
    assert poisoned.info.cache_hit is False
    assert _sq_energy(poisoned, x) == pytest.approx(oracle, rel=1e-15)
    for name in poison:
        monkeypatch.delenv(name)
    plain = build(model)
    assert plain.info.cache_hit is True and plain.info.digest == poisoned.info.digest
    # a fresh process (a plain run) opens the entry the poisoned environment made
    check = subprocess.run([sys.executable, "-c", _EVAL_SQ, text], capture_output=True,
                           text=True, cwd=ROOT, env=dict(os.environ), timeout=300)
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["hit"] is True
    assert json.loads(check.stdout)["energy"] == pytest.approx(oracle, rel=1e-15)


@needs_cc
def test_generated_code_is_compiled_with_werror(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A warning in the generated kernels fails the build, and it is blamed on cfc, not on
    the compiler (which builds a trivial file fine) or the environment."""
    import cfc_dsl.codegen.render as render

    monkeypatch.setenv("CFC_CACHE_DIR", str(tmp_path / "cache"))
    original = render.render_model

    def with_a_warning(model, target=Target.C):  # type: ignore[no-untyped-def]
        rendered = original(model, target)
        return dataclasses.replace(rendered, source=rendered.source +
                                   "int cfc_warns(double x);\n"
                                   "int cfc_warns(double x) { int cfc_never_used; return 0; }\n")

    monkeypatch.setattr(render, "render_model", with_a_warning)
    with pytest.raises(CfcError) as info:
        build(load_source(SQ_MODEL.format(tag=uuid.uuid4().hex[:8]), "sq.cfc"))
    assert info.value.kind is ErrorKind.ENVIRONMENT and info.value.kind.exit_code == 3
    assert "bug in cfc" in info.value.message
    assert "report this as a cfc bug" in (info.value.hint or "")
    assert "cfc_never_used" in (info.value.hint or "")
    assert entry_dirs(tmp_path / "cache") == [] and temp_dirs(tmp_path / "cache") == []


_EVAL_SQ = textwrap.dedent("""
    import json, sys
    from cfc_dsl.frontend import load_source
    from cfc_dsl.runtime.build.pipeline import build
    kernels = build(load_source(sys.argv[1], "sq.cfc"))
    ffi, lib = kernels.ffi, kernels.lib
    x = [3.0, 0.0]
    value = lib.cfc_e_sq(2, ffi.new("int64_t[]", [0, 1]), ffi.new("double[]", x))
    print(json.dumps({"hit": kernels.info.cache_hit, "energy": value}))
""")


# ---------------------------------------------------------------- (k) a damaged cache heals
def _truncate(size: Callable[[int], int]) -> Callable[[Path], None]:
    def damage(entry: Path) -> None:
        lib = entry / json.loads((entry / "entry.json").read_text())["library"]
        data = lib.read_bytes()
        lib.write_bytes(data[:size(len(data))])
    return damage


def _edit_meta(edit: Callable[[dict], object]) -> Callable[[Path], None]:  # type: ignore[type-arg]
    def damage(entry: Path) -> None:
        meta = json.loads((entry / "entry.json").read_text())
        (entry / "entry.json").write_text(json.dumps(edit(meta)))
    return damage


def _replace_with_file(entry: Path) -> None:
    shutil.rmtree(entry)
    entry.write_text("not a folder\n")


def _remove_library(entry: Path) -> None:
    (entry / json.loads((entry / "entry.json").read_text())["library"]).unlink()


def _garbage_library_with_its_hash(entry: Path) -> None:
    """The hash matches, but the library is no ELF file: the load fails, and that heals too."""
    from cfc_dsl.runtime.build.heal import file_sha256

    meta = json.loads((entry / "entry.json").read_text())
    lib = entry / meta["library"]
    lib.write_bytes(b"\x7fELF but not really" * 64)
    meta["library_sha256"] = file_sha256(lib)
    (entry / "entry.json").write_text(json.dumps(meta))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated to 0 bytes": _truncate(lambda n: 0),
    "truncated to 64 bytes": _truncate(lambda n: 64),
    "truncated to half": _truncate(lambda n: n // 2),
    "truncated by one byte": _truncate(lambda n: n - 1),
    "entry.json without library": _edit_meta(lambda m: {k: v for k, v in m.items() if k != "library"}),
    "entry.json naming another library": _edit_meta(lambda m: {**m, "library": "other.so"}),
    "entry.json with a path as library": _edit_meta(lambda m: {**m, "library": "../../x.so"}),
    "entry.json holding a list": _edit_meta(lambda m: [m]),
    "entry.json not JSON": lambda e: (e / "entry.json").write_text("{not json"),
    "a file in place of the entry folder": _replace_with_file,
    "library missing": _remove_library,
    "library not loadable, hash updated": _garbage_library_with_its_hash,
}

_EVAL_CHAIN = textwrap.dedent("""
    import json
    from cfc_dsl.frontend import load_file
    from cfc_dsl.runtime.build.pipeline import build
    k = build(load_file("examples/chain.cfc"))
    ffi = k.ffi
    x = ffi.new("double[]", [0.1, 0.4, 0.7])
    value = k.lib.cfc_e_quadratic(2, ffi.new("int64_t[]", [0, 1]), ffi.new("int64_t[]", [1, 2]),
                                  ffi.new("double[]", [1.0, 1.0]), x)
    print(json.dumps({"hit": k.info.cache_hit, "digest": k.info.digest, "energy": value}))
""")


@pytest.fixture(scope="module")
def pristine_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pristine") / "cache"
    out = subprocess.run([sys.executable, "-c", _EVAL_CHAIN], capture_output=True, text=True,
                         cwd=ROOT, env=dict(os.environ, CFC_CACHE_DIR=str(root)), timeout=600)
    assert out.returncode == 0, out.stderr
    return root


@needs_cc
@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_entry_is_quarantined_and_rebuilt(case: str, pristine_cache: Path,
                                                    tmp_path: Path) -> None:
    from cfc_dsl.runtime.build.heal import QUARANTINE, damage

    root = tmp_path / "cache"
    shutil.copytree(pristine_cache, root)
    [entry] = entry_dirs(root)
    DAMAGE[case](entry)
    out = subprocess.run([sys.executable, "-c", _EVAL_CHAIN], capture_output=True, text=True,
                         cwd=ROOT, env=dict(os.environ, CFC_CACHE_DIR=str(root)), timeout=600)
    assert out.returncode == 0, f"{case}: exit {out.returncode}\n{out.stderr}"
    result = json.loads(out.stdout)
    assert result["hit"] is False and result["digest"] == entry.name
    # the oracle: w (x - y)^2 summed over the two links by hand
    assert result["energy"] == pytest.approx((0.1 - 0.4) ** 2 + (0.4 - 0.7) ** 2, rel=1e-12)
    assert "cfc: note:" in out.stderr and "damaged" in out.stderr and str(entry) in out.stderr
    assert out.stderr.count("cfc: note:") == 1
    assert entry.is_dir() and damage(entry) is None
    assert len(list((root / QUARANTINE).iterdir())) == 1, "the damaged entry was not kept aside"
    assert temp_dirs(root) == [root / QUARANTINE]
    # healed for good: the next run is a plain hit, with nothing to say
    again = subprocess.run([sys.executable, "-c", _EVAL_CHAIN], capture_output=True, text=True,
                           cwd=ROOT, env=dict(os.environ, CFC_CACHE_DIR=str(root)), timeout=600)
    assert again.returncode == 0 and json.loads(again.stdout)["hit"] is True
    assert "note" not in again.stderr


# ---------------------------------------------------------------- (l) staging, full and read-only
def _fake_build(staging: Path) -> dict[str, object]:
    (staging / "lib.so").write_bytes(b"not compiled")
    (staging / "kernels.cdef").write_text("")
    return {"module": "m", "library": "lib.so", "cdef": "kernels.cdef"}


def test_stale_staging_folders_are_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A killed build's staging folder goes; one whose build still holds its lock stays."""
    from filelock import FileLock

    from cfc_dsl.runtime.build import heal

    root = tmp_path / "cache"
    root.mkdir()
    monkeypatch.setenv("CFC_CACHE_DIR", str(root))
    killed, running = "a" * 64, "b" * 64
    (root / f".tmp-{killed}-x1").mkdir()
    (root / f".tmp-{running}-x2").mkdir()
    old, young = root / ".tmp-cccccccccccc-x3", root / ".tmp-dddddddddddd-x4"
    old.mkdir()
    young.mkdir()
    os.utime(old, (time.time() - 2 * heal.STALE_SECONDS,) * 2)
    (root / "parser").mkdir()  # not the cache's: never touched
    with FileLock(str(root / f".{running}.lock")):
        entry, built = cache.publish(BASE_KEY, _fake_build)
    assert built and entry.meta["library_sha256"] == heal.file_sha256(entry.path / "lib.so")
    left = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert left == sorted([f".tmp-{running}-x2", young.name, "parser", entry.path.name])


@pytest.mark.parametrize(("code", "words"), [(28, "out of disk space"), (30, "read-only")])
def test_full_or_read_only_cache_is_an_environment_error(
        code: int, words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC / EROFS while publishing: exit 3, naming the folder and its free space."""
    import errno as errno_module

    assert code in (errno_module.ENOSPC, errno_module.EROFS)
    root = tmp_path / "cache"
    monkeypatch.setenv("CFC_CACHE_DIR", str(root))

    def refuse(src: object, dst: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(cache.os, "replace", refuse)
    with pytest.raises(CfcError) as info:
        cache.publish(BASE_KEY, _fake_build)
    assert info.value.kind.exit_code == 3
    assert words in info.value.message and str(root) in info.value.message
    assert "MiB free" in info.value.message
    assert "CFC_CACHE_DIR" in (info.value.hint or "")
    monkeypatch.undo()
    assert entry_dirs(root) == [] and temp_dirs(root) == []


def test_cache_clear_on_a_read_only_cache_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from cfc_dsl.cli.main import main

    root = tmp_path / "cache"
    monkeypatch.setenv("CFC_CACHE_DIR", str(root))
    entry, _ = cache.publish(BASE_KEY, _fake_build)

    def read_only(path: object, *args: object, **kwargs: object) -> None:
        raise OSError(30, "Read-only file system", str(path))

    monkeypatch.setattr(cache.shutil, "rmtree", read_only)
    assert main(["cache", "clear"]) == 3
    out, err = capsys.readouterr()
    assert "removed 1 cache entry" not in out + err
    assert "removed 0 of 1 cache entries" in err and "Read-only" in err and str(root) in err
    assert entry.path.is_dir()
    monkeypatch.undo()
    monkeypatch.setenv("CFC_CACHE_DIR", str(root))
    (root / ("e" * 64)).write_text("a file in place of an entry folder\n")
    assert main(["cache", "clear"]) == 0
    assert "removed 2 cache entries" in capsys.readouterr().out
    assert entry_dirs(root) == [] and not (root / ("e" * 64)).exists()


# ---------------------------------------------------------------- nobody else's code
def test_a_cache_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    """cfc opens compiled code from the cache, so a folder another user could write (an
    entry planted under a predictable digest) is an exit-3 error naming it, never used."""
    root = tmp_path / "shared"
    root.mkdir()
    os.chmod(root, 0o777)
    done = run_cfc("run", str(CHAIN), "--backend", "c", env={"CFC_CACHE_DIR": str(root)})
    assert done.returncode == 3, done.stderr
    assert f"the cache folder {root} is not private" in done.stderr
    assert "lets others write it" in done.stderr and "chmod go-w" in done.stderr
    assert "Traceback" not in done.stderr
    assert not any(cache.is_entry_dir(p) for p in root.iterdir())
    os.chmod(root, 0o700)  # the same folder, private: it works
    assert run_cfc("run", str(CHAIN), "--backend", "c",
                   env={"CFC_CACHE_DIR": str(root)}).returncode == 0


def test_an_entry_file_others_can_write_is_rebuilt(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "cache"
    monkeypatch.setenv("CFC_CACHE_DIR", str(root))
    model = load_file(CHAIN)
    first = build(model)
    library = first.info.path / json.loads((first.info.path / "entry.json").read_text())[
        "library"]
    os.chmod(library, 0o666)
    again = build(model)
    assert again.info.cache_hit is False  # quarantined and built afresh
    assert not os.stat(again.info.path / library.name).st_mode & 0o022
    assert build(model).info.cache_hit is True


def test_the_default_folder_is_made_private(tmp_path: Path) -> None:
    """Without CFC_CACHE_DIR the folder is cfc's own (~/.cache/cfc): one left group-writable
    (an older cfc under a umask of 002) is tightened to 0700, not refused."""
    xdg = tmp_path / "xdg"
    (xdg / "cfc").mkdir(parents=True)
    os.chmod(xdg / "cfc", 0o775)
    env = {"XDG_CACHE_HOME": str(xdg), "CFC_CACHE_DIR": ""}
    done = run_cfc("run", str(CHAIN), "--backend", "c", env=env)
    assert done.returncode == 0, done.stderr
    assert os.stat(xdg / "cfc").st_mode & 0o777 == 0o700
