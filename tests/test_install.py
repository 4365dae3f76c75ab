"""What the wheel installs, and that nothing else on the path can stand in for its parts.

The wheel is built once per session from a copy of the package folders (so the build never
writes into the checkout) and read with zipfile: its only top-level package is `cfc_dsl`,
every package folder and data file of the repository is inside it, and an install into a
fresh virtual environment keeps working beside foreign `runtime` and `codegen` packages,
installed or in the working directory. Also here: the parser keeps nothing in the shared
temp folder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT
from tests.test_layers import FOLDERS

DIST_INFO = re.compile(r"cfc_dsl-[^/]+\.dist-info$")
TIMEOUT = 600


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.egg-info")
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, src / folder, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(src)], capture_output=True, text=True, timeout=TIMEOUT)
    if build.returncode != 0:
        pytest.fail(f"pip wheel failed:\n{build.stdout}\n{build.stderr}")
    (path,) = out.glob("cfc_dsl-*.whl")
    return path


def _names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


@pytest.mark.slow
def test_wheel_installs_one_top_level_package(wheel: Path) -> None:
    tops = {name.split("/")[0] for name in _names(wheel)}
    dist_info = [t for t in tops if DIST_INFO.fullmatch(t)]
    assert len(dist_info) == 1, tops
    assert tops == {"cfc_dsl", dist_info[0]}, tops
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read(f"{dist_info[0]}/METADATA").decode()
        entry_points = zf.read(f"{dist_info[0]}/entry_points.txt").decode()
    assert re.search(r"^Name: cfc-dsl$", meta, re.M), meta[:300]
    assert re.search(r"^cfc = cfc_dsl\.cli\.main:main$", entry_points, re.M), entry_points


@pytest.mark.slow
def test_wheel_holds_every_package_and_data_file(wheel: Path) -> None:
    names = set(_names(wheel))
    expected = set()
    for folder, package in FOLDERS.items():
        prefix = package.replace(".", "/")
        for path in (ROOT / folder).rglob("*"):
            rel = path.relative_to(ROOT / folder).as_posix()
            if "__pycache__" in rel or not path.is_file():
                continue
            # a forgotten `packages` entry drops a whole subpackage; a missing package-data
            # glob drops the grammar, the stdlib, the templates or py.typed
            if path.suffix in (".py", ".lark", ".cfc", ".j2") or path.name in (
                    "py.typed", "grammar_tables.json", "compiled_templates.json",
                    "stdlib_prepared.json"):
                expected.add(f"{prefix}/{rel}")
    assert "cfc_dsl/py.typed" in expected and "cfc_dsl/grammar.lark" in expected
    assert "cfc_dsl/grammar_tables.json" in expected
    assert "cfc_dsl/codegen/compiled_templates.json" in expected
    assert "cfc_dsl/codegen/stdlib_prepared.json" in expected
    assert "cfc_dsl/stdlib.cfc" in expected and "cfc_dsl/templates/kernels.c.j2" in expected
    assert "cfc_dsl/runtime/build/pipeline.py" in expected
    assert sorted(expected - names) == []


def _foreign_wheel(folder: Path) -> Path:
    """A tiny wheel, 'foreign-pkgs', whose top-level `runtime` and `codegen` refuse import."""
    files = {f"{pkg}/__init__.py": f"raise ImportError('the foreign {pkg} package was imported')\n"
             for pkg in ("runtime", "codegen")}
    info = "foreign_pkgs-1.0.dist-info"
    files[f"{info}/METADATA"] = "Metadata-Version: 2.1\nName: foreign-pkgs\nVersion: 1.0\n"
    files[f"{info}/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: cfc-tests\nRoot-Is-Purelib: true\n"
                              "Tag: py3-none-any\n")
    files[f"{info}/top_level.txt"] = "codegen\nruntime\n"
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    path = folder / "foreign_pkgs-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def _fresh_venv(where: Path) -> Path:
    """A new virtual environment that sees this one's dependencies but not its editable cfc.

    A `.pth` line adds the dependencies' site-packages to sys.path without running the `.pth`
    files in it, so the checkout's editable finder stays out (`--system-site-packages` would
    see the base interpreter's packages, which lack cfc's dependencies).
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True,
                   timeout=TIMEOUT)
    python = where / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "cfc_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, timeout=TIMEOUT)
    assert out.returncode == 0, f"{args}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    return out


@pytest.mark.slow
def test_foreign_runtime_and_codegen_change_nothing(wheel: Path, tmp_path: Path) -> None:
    python = _fresh_venv(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "install", "--quiet", "--no-deps", "--no-index", str(wheel),
          str(_foreign_wheel(tmp_path))], tmp_path, env)

    where = "import importlib.util as u; print(u.find_spec('runtime').origin, u.find_spec('codegen').origin)"
    installed = _run([str(python), "-c", where], tmp_path, env).stdout.split()
    assert all(p.startswith(str(tmp_path / "venv")) for p in installed), installed

    # the user's folder has packages of its own with the names cfc used to install
    work = tmp_path / "work"
    for pkg in ("runtime", "codegen"):
        (work / pkg).mkdir(parents=True)
        (work / pkg / "__init__.py").write_text(f"raise ImportError('the working folder {pkg}')\n")
    (work / "examples").mkdir()
    shutil.copy2(EXAMPLES / "chain.cfc", work / "examples" / "chain.cfc")
    env["PYTHONPATH"] = str(work)  # the console script does not put its cwd on sys.path itself

    shadowing = _run([str(python), "-c", where], work, env).stdout.split()
    assert all(p.startswith(str(work)) for p in shadowing), shadowing

    cli = _run([str(python.parent / "cfc"), "run", "examples/chain.cfc", "--backend", "python",
                "--json"], work, env)
    cli_energy = json.loads(cli.stdout)["energy"]

    code = ("import sys, cfc_dsl as cfc\n"
            f"assert cfc.__file__.startswith({str(tmp_path / 'venv')!r}), cfc.__file__\n"
            "result = cfc.load('examples/chain.cfc').compile().bind().relax()\n"
            "assert 'runtime' not in sys.modules and 'codegen' not in sys.modules\n"
            "print(result.energy)\n")
    api_energy = float(_run([str(python), "-c", code], work, env).stdout)

    import cfc_dsl as cfc  # the checkout's copy: the same model must give the same minimum
    reference = cfc.load(EXAMPLES / "chain.cfc").compile(backend="python").bind().relax().energy
    assert cli_energy == pytest.approx(reference, rel=1e-9, abs=1e-12)
    assert api_energy == pytest.approx(reference, rel=1e-6, abs=1e-9)

    # uninstalling the foreign package takes none of cfc's files with it
    _run([*pip, "uninstall", "--quiet", "--yes", "foreign-pkgs"], tmp_path, env)
    _run([str(python), "-c", "import cfc_dsl.codegen.render, cfc_dsl.runtime.build.pipeline"],
         work, env)


# the shipped tables (cfc_dsl/parser_tables.py) set aside, so the parser builds its own
BUILD_TABLES = "import cfc_dsl.parser_tables as t; t.load = lambda grammar: None\n"


def test_parser_tables_never_land_in_the_shared_temp_folder(tmp_path: Path) -> None:
    shared, cache = tmp_path / "shared-tmp", tmp_path / "cache"
    shared.mkdir()
    env = {**os.environ, "TMPDIR": str(shared), "CFC_CACHE_DIR": str(cache)}
    code = (f"{BUILD_TABLES}import tempfile; from cfc_dsl.parser import parse\n"
            f"assert tempfile.gettempdir() == {str(shared)!r}, tempfile.gettempdir()\n"
            f"parse(open({str(EXAMPLES / 'sequence_redemption.cfc')!r}).read(), 'm.cfc')\n")
    for _ in range(2):  # the first run writes the tables, the second reads them
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=TIMEOUT)
        assert out.returncode == 0, out.stderr
        assert sorted(shared.iterdir()) == []
    folder = cache / "parser"
    assert folder.stat().st_mode & 0o777 == 0o700
    assert [p.suffix for p in folder.iterdir()] == [".pickle"]


def test_parser_ignores_tables_another_user_could_write(tmp_path: Path) -> None:
    """A parser folder writable by others is not trusted: the tables are rebuilt, not read."""
    cache = tmp_path / "cache"
    (cache / "parser").mkdir(parents=True)
    os.chmod(cache / "parser", 0o777)
    env = {**os.environ, "CFC_CACHE_DIR": str(cache)}
    code = (f"{BUILD_TABLES}from cfc_dsl.parser import _parser, _table_cache, parse\n"
            "assert _table_cache('grammar') is False\n"
            "parse('size N = 3\\n', 'm.cfc')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=TIMEOUT)
    assert out.returncode == 0, out.stderr
    assert list((cache / "parser").iterdir()) == []


@pytest.mark.parametrize("env", [{"CFC_CACHE_DIR": "/x/cfc"}, {"XDG_CACHE_HOME": "/x/xdg"}, {}])
def test_parser_and_build_agree_on_the_cache_folder(env: dict[str, str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from cfc_dsl.parser import cache_root
    from cfc_dsl.runtime.build.cache import cache_dir

    for name in ("CFC_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cache_root() == cache_dir()
