"""The solver registry and the steerable objective: lookups and option parsing with their
exact messages (Python and command line, with the caret), `cfc solvers`, weights changed at
run time against a rebind with `--set weight.F=`, and per-family gradients against the
Python reference backend."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import cfc_dsl as cfc
import cfc_dsl.runtime.problem as problem_module
from cfc_dsl.cli.main import main
from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.runtime.lipschitz import global_lipschitz
from cfc_dsl.runtime.objective import family_grad_norms
from cfc_dsl.runtime.solvers.pgd import PgdOptions
from cfc_dsl.runtime.solvers.registry import (
    SOLVERS,
    Needs,
    options_hint,
    parse_options,
    register,
    solver_class,
    solver_infos,
    solver_names,
)
from conftest import EXAMPLES

CHAIN = str(EXAMPLES / "chain.cfc")
# The hint lists every option of the solver; the menu grows (issue 8), so the golden text
# is its start, and the whole hint must be the registry's listing.
PGD_KEYS_START = "solver 'pgd' takes max_steps: int = 1000, tol: float = 1e-08, "
PGD_KEYS = options_hint("pgd")


# ---------------------------------------------------------------- the registry
def test_every_solver_is_registered_with_frozen_options_and_needs() -> None:
    # `auto` is the default, listed first; every solver declares the generated Hessian-vector
    # products for the shared second-order test, and L only where it uses it
    assert solver_names()[0] == "auto" and {"pgd", "certified"} <= set(solver_names())
    assert PGD_KEYS.startswith(PGD_KEYS_START)
    for key in ("armijo_c: float = 0.0001", "shrink: float = 0.5", "max_backtracks: int = 60",
                "lipschitz_cap: bool = False", "ftol: float = 1e-15", "stall_steps: int = 20"):
        assert key in PGD_KEYS
    for name in solver_names():
        cls = solver_class(name)
        assert cls.name == name and cls.description
        assert dataclasses.is_dataclass(cls.Options)
        with pytest.raises(dataclasses.FrozenInstanceError):
            cls.Options().max_steps = 3  # type: ignore[misc]
        assert isinstance(cls().needs(cls.Options()), Needs)
    for name in solver_names():
        assert Needs.HVP in solver_class(name)().needs(solver_class(name).Options())
    certified = solver_class("certified")
    assert certified().needs(certified.Options()) == Needs.LIPSCHITZ | Needs.HVP
    assert solver_class("pgd")().needs(PgdOptions()) == Needs.HVP
    assert solver_class("pgd")().needs(PgdOptions(lipschitz_cap=True)) == (
        Needs.LIPSCHITZ | Needs.HVP)


def test_unknown_solver_lists_the_choices() -> None:
    with pytest.raises(CfcError) as info:
        solver_class("pdg")
    assert info.value.kind is ErrorKind.ARGUMENT
    assert info.value.message == "unknown solver 'pdg'"
    assert info.value.hint == (f"did you mean 'pgd'? available solvers: "
                               f"{', '.join(solver_names())} (see 'cfc solvers')")
    assert info.value.hint.startswith("did you mean 'pgd'? available solvers: auto, pgd, ")


def test_register_refuses_twice_and_mutable_options() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register(SOLVERS["pgd"])

    @dataclasses.dataclass
    class Loose:
        max_steps: int = 1

    class Bad:
        name, description, Options = "bad_options", "", Loose

    with pytest.raises(TypeError, match="frozen dataclass"):
        register(Bad)
    assert "bad_options" not in SOLVERS


# ---------------------------------------------------------------- option parsing
def test_options_from_strings_follow_the_field_types() -> None:
    opts = parse_options("pgd", {"max_steps": "1e3", "tol": "1e-6", "lipschitz_cap": "yes",
                                 "shrink": "0.25"})
    assert opts == PgdOptions(max_steps=1000, tol=1e-6, lipschitz_cap=True, shrink=0.25)
    assert parse_options("pgd", {}) == PgdOptions()
    assert parse_options("pgd", {"max_steps": 7, "tol": 0}) == PgdOptions(max_steps=7, tol=0.0)


@pytest.mark.parametrize("values, message", [
    ({"max_step": "3"}, "solver 'pgd' has no option 'max_step'"),
    ({"max_steps": "abc"}, "option 'max_steps' of solver 'pgd' takes an int, got 'abc'"),
    ({"max_steps": "2.5"}, "option 'max_steps' of solver 'pgd' takes an int, got '2.5'"),
    ({"max_steps": True}, "option 'max_steps' of solver 'pgd' takes an int, got True"),
    ({"max_steps": "-1"}, "option 'max_steps' of solver 'pgd' must be >= 0, got '-1'"),
    ({"tol": "nan"}, "option 'tol' of solver 'pgd' must be a finite number >= 0, got 'nan'"),
    ({"shrink": "1"}, "option 'shrink' of solver 'pgd' must be in (0, 1), got '1'"),
    ({"lipschitz_cap": "maybe"},
     "option 'lipschitz_cap' of solver 'pgd' takes a bool, got 'maybe'"),
])
def test_bad_options_name_the_key_and_list_the_valid_ones(values, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CfcError) as info:
        parse_options("pgd", values)
    assert info.value.kind is ErrorKind.ARGUMENT
    assert info.value.message == message
    assert info.value.hint.endswith(PGD_KEYS) and PGD_KEYS_START in info.value.hint


def test_relax_checks_its_keyword_options() -> None:
    problem = cfc.load(CHAIN).compile(backend="c").bind()
    with pytest.raises(CfcError) as info:  # never a bare TypeError
        problem.relax("pgd", max_step=3)
    assert info.value.hint == "did you mean 'max_steps'? " + PGD_KEYS
    with pytest.raises(CfcError, match="has no option 'armijo_c'"):
        problem.relax("certified", armijo_c=0.1)
    assert problem.relax("pgd", max_steps=3, armijo_c=0.1).result.options == PgdOptions(
        max_steps=3, armijo_c=0.1)


def test_relax_takes_options_as_a_dataclass_or_a_mapping() -> None:
    """options= is the solver's dataclass or a mapping checked like the keywords; anything
    else (another solver's dataclass, a number) is a CfcError, never an AttributeError."""
    problem = cfc.load(CHAIN).compile(backend="c").bind()
    ready = PgdOptions(max_steps=3, armijo_c=0.1)
    assert problem.relax("pgd", options=ready).result.options == ready
    assert problem.relax("pgd", options={"max_steps": 3, "armijo_c": 0.1}).result.options \
        == ready
    with pytest.raises(CfcError, match="has no option 'max_step'"):
        problem.relax("pgd", options={"max_step": 3})
    for bad in (3, ready):
        solver = "pgd" if bad == 3 else "newton"
        with pytest.raises(CfcError, match=f"options= for solver '{solver}' must be a"):
            problem.relax(solver, options=bad)
    with pytest.raises(CfcError, match="either options= or keyword options"):
        problem.relax("pgd", options=ready, max_steps=3)


# ---------------------------------------------------------------- the command line
def _cli_error(capsys, *args: str) -> list[str]:  # type: ignore[no-untyped-def]
    assert main(["run", CHAIN, *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.splitlines()


def test_solver_opt_errors_point_at_the_command_line(capsys) -> None:  # type: ignore[no-untyped-def]
    assert _cli_error(capsys, "--solver", "pgd", "--solver-opt", "armijo=0.1") == [
        "<command line>:1:14: error: solver 'pgd' has no option 'armijo'",
        " 1 | --solver-opt armijo=0.1",
        "   |              ^^^^^^",
        "hint: did you mean 'armijo_c'? " + PGD_KEYS]
    assert _cli_error(capsys, "--solver", "pgd", "--solver-opt", "max_steps=abc") == [
        "<command line>:1:24: error: option 'max_steps' of solver 'pgd' takes an int, got 'abc'",
        " 1 | --solver-opt max_steps=abc",
        "   |                        ^^^",
        "hint: " + PGD_KEYS]
    assert _cli_error(capsys, "--solver", "pgd", "--max-steps", "-1")[:3] == [
        "<command line>:1:13: error: option 'max_steps' of solver 'pgd' must be >= 0, got '-1'",
        " 1 | --max-steps -1",
        "   |             ^^"]
    assert _cli_error(capsys, "--solver-opt", "nokv")[0] == (
        "<command line>:1:14: error: '--solver-opt nokv' is not KEY=VALUE")
    assert _cli_error(capsys, "--solver", "certified", "--lipschitz-cap")[0] == (
        "<command line>:1:1: error: solver 'certified' has no option 'lipschitz_cap'")


def test_solver_opt_and_shorthands_reach_the_solver(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["run", CHAIN, "--solver", "pgd", "--max-steps", "5", "--solver-opt", "max_steps=3",
                 "--solver-opt", "armijo_c=0.01", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["steps"] == 3  # --solver-opt comes after the shorthand
    assert payload["solver_options"]["armijo_c"] == 0.01


def test_cfc_solvers_lists_options_and_defaults(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["solvers", "--json"]) == 0
    listing = {s["name"]: s for s in json.loads(capsys.readouterr().out)["solvers"]}
    assert list(listing) == list(solver_names())
    assert listing["certified"]["needs"] == ["lipschitz", "hvp"]
    assert listing["pgd"]["needs"] == ["hvp"]
    options = {o["name"]: (o["type"], o["default"]) for o in listing["pgd"]["options"]}
    assert options == {f.name: (type(f.default).__name__, f.default)
                       for f in dataclasses.fields(PgdOptions)}
    assert [i.to_json() for i in solver_infos()] == list(listing.values())
    assert main(["solvers"]) == 0
    text = capsys.readouterr().out
    assert "pgd: projected gradient" in text and "max_backtracks: int = 60" in text


# ---------------------------------------------------------------- runtime weights
@pytest.mark.parametrize("backend", ["c", "python"])
def test_a_weight_changed_at_run_time_equals_a_rebind(backend: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    compiled = cfc.load(CHAIN).compile(backend=backend)
    problem = compiled.bind()
    rebound = compiled.bind(weights={"link": 2.5})  # what --set weight.link=2.5 does
    kernels, bound, backend_obj = problem.kernels, problem.bound, problem.backend
    x = np.random.default_rng(0).uniform(0, 1, problem.bound.n)

    def forbidden(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a weight change must not build or bind")

    monkeypatch.setattr(problem_module, "bind", forbidden)
    monkeypatch.setattr(problem_module, "build", forbidden)
    before = problem.energy_and_grad(x)
    problem.set_weights({"link": 2.5})
    np.testing.assert_array_equal(problem.weights, [1.0, 2.5])
    after, expected = problem.energy_and_grad(x), rebound.energy_and_grad(x)
    assert after[0] == expected[0] and after[0] != before[0]
    np.testing.assert_array_equal(after[1], expected[1])
    np.testing.assert_array_equal(after[2], expected[2])
    assert problem.energy(x)[0] == rebound.energy(x)[0]
    ours, theirs = problem.relax(max_steps=50), rebound.relax(max_steps=50)
    assert ours.energy == theirs.energy and ours.steps == theirs.steps
    np.testing.assert_array_equal(ours.x, theirs.x)
    assert (problem.kernels, problem.bound, problem.backend) == (kernels, bound, backend_obj)
    # the certified L follows the weights too
    assert global_lipschitz(problem, refine=False).L == global_lipschitz(rebound, refine=False).L
    problem.weights = [1.0, 1.0]
    assert problem.energy_and_grad(x)[0] == before[0]


def test_bad_weights_are_errors() -> None:
    problem = cfc.load(CHAIN).compile(backend="c").bind()
    with pytest.raises(CfcError) as info:
        problem.set_weights({"lnk": 1.0})
    assert info.value.message == "no factor family 'lnk' to weight"
    assert info.value.hint == "did you mean 'link'? the families: local, link"
    with pytest.raises(CfcError, match="expected 2 finite weights"):
        problem.weights = [1.0, float("nan")]
    np.testing.assert_array_equal(problem.weights, [1.0, 1.0])


# ---------------------------------------------------------------- per-family gradients
@pytest.mark.parametrize("name", ["seed_baseline", "chain", "sequence_redemption"])
def test_per_family_gradients_match_the_python_backend(name: str) -> None:
    model = cfc.load(str(EXAMPLES / f"{name}.cfc"))
    c, py = model.compile(backend="c").bind(), model.compile(backend="python").bind()
    weights = np.linspace(0.5, 2.0, len(c.family_names))
    c.weights = py.weights = weights
    x = np.random.default_rng(1).uniform(c.lower, c.upper)
    f, fam, grad, rows = c.energy_and_grad(x, per_family=True)
    f_py, fam_py, grad_py, rows_py = py.energy_and_grad(x, per_family=True)
    assert rows.shape == (len(c.family_names), c.bound.n)
    np.testing.assert_allclose(rows, rows_py, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(family_grad_norms(rows), family_grad_norms(rows_py), rtol=1e-12)
    np.testing.assert_allclose(family_grad_norms(rows), np.linalg.norm(rows_py, axis=1),
                               rtol=1e-12)
    np.testing.assert_allclose(fam, fam_py, rtol=1e-12, atol=1e-15)
    # the same pass as the total: energies agree exactly, the gradient to round-off
    total = c.energy_and_grad(x)
    assert f == total[0]
    np.testing.assert_array_equal(fam, total[1])
    np.testing.assert_allclose(grad, total[2], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(grad_py, total[2], rtol=1e-12, atol=1e-14)
    # a family's row is its weight times its unweighted gradient
    for i in range(len(weights)):
        one = np.zeros_like(weights)
        one[i] = 1.0
        py.weights = one
        np.testing.assert_allclose(rows_py[i], weights[i] * py.energy_and_grad(x)[2],
                                   rtol=1e-12, atol=1e-14)


def test_per_family_access_is_declared() -> None:
    problem = cfc.load(CHAIN).compile(backend="c").bind()
    with pytest.raises(RuntimeError, match="PER_FAMILY"):
        problem.objective(Needs.NONE).energy_and_grad(problem.bound.x0, per_family=True)
