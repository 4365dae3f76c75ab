"""Start-up: a cache-hit `cfc run` imports only what it uses. SymPy, setuptools, SciPy,
matplotlib, dask and networkx are for compiling, lbfgsb, figures, sweeps and cd; a stdlib
model relaxed by the default solver from a warm cache needs none of them (issue 12, item 5).
Nor does it load Lark, the parser or the checker (the checked model comes from the model
cache), the compile command's module, or any solver but the one it runs.
The check is on `sys.modules` in a fresh interpreter, not on time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLES

HEAVY = ("sympy", "setuptools", "scipy", "matplotlib", "dask", "networkx", "jinja2", "lark",
         "pandas", "pyarrow", "filelock",  # filelock: only a miss takes the build lock
         "difflib")  # only for an error's did-you-mean hint
# cfc's own modules a cache-hit run of the default solver has no use for
UNUSED = ("cfc_dsl.parser", "cfc_dsl.checker", "cfc_dsl.derive", "cfc_dsl.lipschitz",
          "cfc_dsl.codegen.render", "cfc_dsl.cli.compile", "cfc_dsl.runtime.observe.plots",
          "cffi.recompiler",  # cffi's C generator: only a miss writes a module
          # continuation, adapters and gates: only when a run has schedules, an adapter or
          # gated families (the package itself is a few lazy names)
          *(f"cfc_dsl.runtime.coordinate.{name}"
            for name in ("adapters", "expansion", "gates", "homotopy", "rounds")),
          "cfc_dsl.runtime.observables",  # only for `data ... from OBS(...)`
          # stdlib a hit has no use for: processes and build folders are for a miss (the
          # compiler, the OpenMP probe), traceback for CFC_DEBUG, importlib.resources was
          # the generator digest's walk (a package's own folder is read instead)
          "subprocess", "tempfile", "concurrent.futures", "logging", "traceback",
          "importlib.resources", "zipfile",
          *(f"cfc_dsl.runtime.solvers.{name}"
            for name in ("admm", "apg", "cd", "certified", "lbfgsb", "pgd", "prox")))

# main() in a fresh interpreter, then the heavy top-level packages and the unused cfc
# modules it left in sys.modules
_PROBE = """
import json, sys
from cfc_dsl.cli.main import main
code = main(sys.argv[2:])
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1].split(',')))
unused = sorted(set(sys.modules) & set(sys.argv[1].split(',')))
print('@@' + json.dumps({'code': code, 'heavy': heavy, 'unused': unused}))
"""


def _imports(*argv: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _PROBE, ",".join(HEAVY + UNUSED), *argv],
                          capture_output=True, text=True, env=dict(os.environ), check=False)
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("@@")]
    assert line, done.stdout + done.stderr
    return json.loads(line[-1][2:])


@pytest.mark.parametrize("example", ["chain", "sequence_redemption", "seed_baseline"])
def test_cache_hit_run_imports_nothing_heavy(example: str) -> None:
    model = str(EXAMPLES / f"{example}.cfc")
    warm = _imports("compile", model, "--quiet")  # fills this session's cache
    assert warm["code"] == 0
    first = _imports("run", model, "--max-steps", "20", "--quiet")  # fills the model cache
    assert first["code"] == 0
    hit = _imports("run", model, "--max-steps", "20", "--quiet")
    assert hit["code"] == 0
    assert hit["heavy"] == [], f"a cache-hit run imported {hit['heavy']}"
    assert hit["unused"] == [], f"a cache-hit run imported {hit['unused']}"


def test_the_probe_sees_a_solver_module_when_it_is_chosen() -> None:
    model = str(EXAMPLES / "chain.cfc")
    assert _imports("compile", model, "--quiet")["code"] == 0
    # fills the model cache, so the test does not depend on an earlier one having done it
    assert _imports("run", model, "--max-steps", "5", "--quiet")["code"] == 0
    hit = _imports("run", model, "--solver", "pgd", "--max-steps", "5", "--quiet")
    assert hit["code"] == 0
    solvers = [m for m in hit["unused"] if m.startswith("cfc_dsl.")]  # type: ignore[attr-defined]
    assert solvers == ["cfc_dsl.runtime.solvers.pgd"]  # and no other solver


def test_help_and_the_parser_import_no_runtime() -> None:
    """Building the argument parser (every command, `--help`) loads no NumPy and no runtime:
    `run`'s arguments, whose choices come from the runtime, are added when `run` is parsed."""
    code = ("import sys; from cfc_dsl.cli.main import build_parser; build_parser(); "
            "bad = sorted(m for m in sys.modules if m == 'numpy' or m.startswith("
            "('cfc_dsl.runtime.', 'lark', 'cfc_dsl.parser', 'cfc_dsl.model'))); print(bad)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
    helped = subprocess.run([sys.executable, "-m", "cfc_dsl.cli.main", "--help"],
                            capture_output=True, text=True, check=True)
    for command in ("compile", "run", "eval", "dump", "cache", "check", "graph", "solvers",
                    "sweep", "plot"):
        assert f"    {command} " in helped.stdout, command
    run_help = subprocess.run([sys.executable, "-m", "cfc_dsl.cli.main", "run", "--help"],
                              capture_output=True, text=True, check=True)
    assert "{auto,pgd,apg,cd,prox,admm,lbfgsb,newton,certified}" in run_help.stdout
    assert "--adapter {gradnorm," in run_help.stdout


def test_the_lazy_registry_knows_every_solver_by_its_module() -> None:
    """Each shipped solver's module registers exactly its name, and listing the names
    imports none of them."""
    code = ("import sys; from cfc_dsl.runtime.solvers import registry as r; "
            "names = r.solver_names(); "
            "print(names, [m for m in sys.modules if m.startswith('cfc_dsl.runtime.solvers.') "
            "and m != 'cfc_dsl.runtime.solvers.registry'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip().endswith("[]"), done.stdout
    import importlib

    from cfc_dsl.runtime.solvers import registry

    for name, module in registry.BUILTIN.items():
        importlib.import_module(module)
        assert registry.SOLVERS.loaded[name].__module__ == module
    assert set(registry.BUILTIN) <= set(registry.SOLVERS.loaded)


def test_lbfgsb_still_imports_scipy_when_chosen() -> None:
    model = str(EXAMPLES / "chain.cfc")
    assert _imports("compile", model, "--quiet")["code"] == 0
    hit = _imports("run", model, "--solver", "lbfgsb", "--max-steps", "5", "--quiet")
    assert hit["code"] == 0
    assert "scipy" in hit["heavy"]  # the oracle of the probe: it does see a lazy import


def test_the_lazy_coordinate_package_names_every_shipped_adapter() -> None:
    """`--adapter` choices come from BUILTIN_ADAPTERS without importing adapters.py; once it
    is imported they come from its registry, and the lazy names are the real objects."""
    code = ("import sys; from cfc_dsl.runtime import coordinate as c; names = c.adapter_names(); "
            "print(names, [m for m in sys.modules if m.startswith('cfc_dsl.runtime.coordinate.')])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    from cfc_dsl.runtime import coordinate

    assert done.stdout.strip() == f"{coordinate.BUILTIN_ADAPTERS} []", done.stdout
    from cfc_dsl.runtime.coordinate import adapters, homotopy, rounds

    assert adapters.adapter_names() == coordinate.BUILTIN_ADAPTERS == coordinate.adapter_names()
    assert coordinate.Schedule is homotopy.Schedule and coordinate.Round is rounds.Round
    assert coordinate.ADAPTERS is adapters.ADAPTERS and coordinate.adapt is adapters.adapt
    with pytest.raises(AttributeError):
        coordinate.no_such_name  # noqa: B018



_GC_PROBE = """
import gc, sys
from cfc_dsl.cli.main import main
mode, sys.argv = sys.argv[1], sys.argv[2:]  # sys.argv as the `cfc` script sees it
code = main(None if mode == "program" else sys.argv[1:])
print('@@', code, gc.isenabled(), gc.get_freeze_count() > 0)
"""


def test_the_program_starts_without_collections_and_freezes_at_exit() -> None:
    """As the program (argv from the process), `cfc run` pauses automatic collection while
    it starts, resumes it for the relaxation (start-up objects frozen on a cache hit) and
    freezes everything before exit (cli/process.py); called from Python with its own argv
    (a test, an embedding program), main() leaves the collector as it found it."""
    model = str(EXAMPLES / "chain.cfc")
    assert _imports("compile", model, "--quiet")["code"] == 0
    outcomes = {}
    for mode in ("program", "library"):
        argv = [mode, "cfc", "run", model, "--max-steps", "5", "--quiet"]
        done = subprocess.run([sys.executable, "-c", _GC_PROBE, *argv], capture_output=True,
                              text=True, check=False)
        line = [ln for ln in done.stdout.splitlines() if ln.startswith("@@")]
        assert line, done.stdout + done.stderr
        outcomes[mode] = line[-1].split()[1:]
    assert outcomes["program"] == ["0", "True", "True"]
    assert outcomes["library"] == ["0", "True", "False"]
    # a run that fails while it starts (no such model) still hands the collector back
    done = subprocess.run([sys.executable, "-c", _GC_PROBE, "program", "cfc", "run",
                           str(EXAMPLES / "no_such_model.cfc")], capture_output=True, text=True,
                          check=False)
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("@@")]
    assert line and line[-1].split()[1:3] == ["2", "True"], done.stdout + done.stderr


def test_the_generator_digest_is_the_importlib_resources_walk() -> None:
    """generator_digest reads each package's own folder (no importlib.resources on a hit):
    the same files, in the same order, so the same digest and the same cache keys."""
    import hashlib
    from importlib import resources

    from cfc_dsl.runtime.build import pipeline

    digest = hashlib.sha256()
    for package in pipeline._GENERATOR_PACKAGES:
        for path in sorted(resources.files(package).iterdir(), key=lambda p: p.name):
            if path.is_file() and path.name.endswith(pipeline._GENERATOR_SUFFIXES):
                digest.update(f"{package}/{path.name}\n".encode())
                digest.update(path.read_bytes())
    assert pipeline.generator_digest() == digest.hexdigest()
