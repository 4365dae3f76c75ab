"""An energy's name never makes the generated C define a symbol twice.

Each energy E gets symbols `cfc_<kind>_E` (`cfc_eg_E`, `cfc_hb_E`, `cfc_kernel_E`, ...); the
rest of the generated text is fixed. A fixed name of that form with a valid tail T would be
defined a second time by an energy named T: `round` met the bound helper `cfc_hb_round`, `fn`
the function type `cfc_er_fn`. Internal helpers are spelled `cfc__...` (no kind can be
empty); the few public fixed names of that form (`cfc_eg_all`, which the runtime calls) make
their tail a reserved energy name (cfc_dsl/reserved.py), rejected by the checker.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache

import numpy as np
import pytest

import cfc_dsl as cfc
from cfc_dsl.codegen.render import render_model
from cfc_dsl.diagnostics import CfcError
from cfc_dsl.frontend import load_source
from cfc_dsl.model import Target
from cfc_dsl.reserved import RESERVED_ENERGY_NAMES
from conftest import ALL_ENERGIES_MODEL, run_cfc

# names of fixed symbols of the C and CUDA text (before this test: helpers `cfc_hb_round`,
# `cfc_hb_step`, `cfc_hb_sign`, the threaded drivers, CUDA's statics, `a` beside `a_kernel`)
CLASHING = ("round", "step", "sign", "openmp", "select", "sum", "kernel", "family", "ep",
            "egp", "hvp", "hdp", "a", "a_kernel", "lock", "collect", "partials", "blocks")
NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
SYMBOL = re.compile(r"\bcfc_\w+")


def clash_model() -> str:
    lines = ["model clash", "size N = 3"]
    lines += [f"var x{i}[N] in [0, 1] = 0.5" for i in range(len(CLASHING))]
    lines += [f"energy {n}(u; t = 0) = (u - t)^2 + 0.1*relu(u - t)^2" for n in CLASHING]
    lines += [f"factor f{i}[k in 0..N] = {n}(x{i}[k]; t = {0.1 + 0.04 * i:.2f})"
              for i, n in enumerate(CLASHING)]
    return "\n".join(lines) + "\n"


def test_energies_named_like_helpers_compile_and_relax() -> None:
    """A real build (gcc, the C backend) and two solvers: newton, and pgd, which calls each
    energy's curvature bound `cfc_hb_<energy>` (cfc_hb_round among them) for its L."""
    compiled = cfc.loads(clash_model(), "clash.cfc").compile(backend="c")
    assert compiled.backend_kind.value == "c"
    problem = compiled.bind()
    targets = np.repeat([0.1 + 0.04 * i for i in range(len(CLASHING))], 3)
    reference = cfc.loads(clash_model(), "clash.cfc").compile(backend="python").bind()
    x = np.linspace(0.0, 1.0, targets.size)
    (e_c, _, g_c), (e_py, _, g_py) = problem.energy_and_grad(x), reference.energy_and_grad(x)
    assert e_c == pytest.approx(e_py, rel=1e-12) and np.allclose(g_c, g_py, rtol=1e-12, atol=0)
    for solver in ("auto", "pgd"):
        relaxed = problem.relax(solver=solver)
        assert relaxed.result.converged, (solver, relaxed)
        assert np.allclose(relaxed.x, targets, atol=1e-6), (solver, relaxed.x)


@pytest.mark.parametrize("name", sorted(RESERVED_ENERGY_NAMES))
def test_reserved_energy_name_is_a_located_error(name: str) -> None:
    text = f"model m\nvar x in [0, 1] = 0.5\nenergy {name}(u) = u^2\nfactor f = {name}(x)\n"
    with pytest.raises(CfcError) as caught:
        load_source(text, "m.cfc")
    err = caught.value
    assert (err.exit_code, err.span.line, err.span.column) == (2, 3, 8)
    assert f"'{name}' cannot name an energy" in err.message
    assert "cfc_" in err.message  # it names the generated symbol it would clash with
    assert err.hint == f"choose another name, for example '{name}_'"
    assert load_source(text.replace(name, f"{name}_"), "m.cfc").energy(f"{name}_")


@pytest.mark.parametrize("name", sorted(RESERVED_ENERGY_NAMES))
def test_reserved_energy_name_through_the_cli(name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "m.cfc"
    path.write_text(f"model m\nvar x in [0, 1] = 0.5\nenergy {name}(u) = u^2\nfactor f = {name}(x)\n")
    result = run_cfc("compile", str(path))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{path}:3:8: error: '{name}' cannot name an energy"), lines
    assert re.fullmatch(r" +\| {8}\^+", lines[2]) and lines[2].count("^") == len(name)
    assert lines[3] == f"hint: choose another name, for example '{name}_'"
    assert "Traceback" not in result.stderr and "this is a bug in cfc" not in result.stderr


@cache
def accepted(name: str) -> bool:
    """Whether the checker takes `name` for a user energy."""
    try:
        load_source(f"model m\nvar x\nenergy {name}(u) = u^2\nfactor f = {name}(x)\n", "m.cfc")
    except CfcError:
        return False
    return True


def symbols(text: str) -> set[str]:
    return set(SYMBOL.findall(COMMENT.sub(" ", text)))


def test_no_fixed_symbol_has_an_energys_form() -> None:
    """Every `cfc_` name of the C and CUDA text (source, header, cdef; comments left out) of
    a model with every standard-library energy and every built-in function is split into
    per-energy ones, `cfc_<kind>_<energy>` for an energy of the model, and fixed ones; no
    fixed one reads `cfc_<kind>_<tail>` for a kind seen and a tail the checker accepts as an
    energy name. A new template helper of that form fails here. (The energies' names here
    are no tail of a fixed name, so the split is right; the clash model is checked below.)"""
    model = load_source(ALL_ENERGIES_MODEL, "m.cfc")
    energies = {e.name for e in model.used_energies}
    texts = [getattr(render_model(model, target), part) for target in (Target.C, Target.CUDA)
             for part in ("source", "header", "cdef")]
    found = set().union(*map(symbols, texts))
    per_energy = {s: m.group(1) for s in found
                  if (m := re.fullmatch(r"cfc_([a-z]+)_(\w+)", s)) and m.group(2) in energies}
    kinds = set(per_energy.values())
    fixed = found - set(per_energy)
    # the test sees what it is about: the kernels, drivers, bounds and the fixed entry points
    assert {"e", "eg", "egm", "egv", "hv", "hd", "hvm", "kernel", "kd", "hb", "egk"} <= kinds
    assert {"cfc_eg_all", "cfc__hb_round", "cfc_er_fn", "cfc_openmp", "cfc_ep"} <= fixed
    clashes = {(f, f[len(kind) + 5:]) for f in fixed for kind in kinds
               if f.startswith(f"cfc_{kind}_") and NAME.fullmatch(f[len(kind) + 5:])}
    open_ = sorted((f, tail) for f, tail in clashes if accepted(tail))
    assert not open_, f"fixed symbols an energy name would define again: {open_}"
    # each reserved name is there for a fixed symbol still generated
    assert set(RESERVED_ENERGY_NAMES) <= {tail for _, tail in clashes}


@pytest.mark.parametrize("target", [Target.C, Target.CUDA])
def test_every_function_is_defined_once(target: Target) -> None:
    """The clash model's source defines each function once (`a` beside `a_kernel`: CUDA's
    __global__ kernels were `cfc_eg_<energy>_kernel`)."""
    text = COMMENT.sub(" ", render_model(load_source(clash_model(), "clash.cfc"), target).source)
    defined = re.findall(r"(?m)^[A-Za-z_].*?\b(cfc_\w+)\([^;{]*\)\s*\{", text)
    assert len(defined) > 10 * len(CLASHING)
    assert [n for n, c in Counter(defined).items() if c > 1] == []
