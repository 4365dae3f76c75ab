"""The Python facade as a user meets it: typed entry points, catchable errors, short reprs.

`import cfc_dsl as cfc` exports `load`, `loads`, `Model` and the `CfcError` family. Each
subclass is raised by one bad input of its stage and caught by its own name; its text is the
located message (file:line:col, the source line, a caret, a hint) in `str` and in the Jupyter
display alike.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable
from pathlib import Path

import pytest

import cfc_dsl as cfc
from tests.conftest import EXAMPLES

CHAIN = EXAMPLES / "chain.cfc"


def test_entry_points_have_real_return_types() -> None:
    from cfc_dsl import model as language
    from cfc_dsl.runtime.problem import CompiledModel, Problem, Relaxation

    hints = {fn.__qualname__: typing.get_type_hints(fn)["return"]
             for fn in (cfc.load, cfc.loads, cfc.Model.compile, CompiledModel.bind, Problem.relax)}
    assert hints == {"load": cfc.Model, "loads": cfc.Model, "Model.compile": CompiledModel,
                     "CompiledModel.bind": Problem, "Problem.relax": Relaxation}
    assert issubclass(cfc.Model, language.Model)  # the facade extends the language's Model


def test_py_typed_ships_with_the_package() -> None:
    assert (Path(cfc.__file__).parent / "py.typed").is_file()


def test_the_exports_include_what_the_docstring_names() -> None:
    assert set(cfc.__all__) >= {
        "load", "loads", "Model", "CfcError", "CfcSyntaxError", "CfcCheckError", "CfcBindError",
        "CfcArgumentError", "CfcNumericError", "CfcEnvironmentError", "__version__"}
    for name in cfc.__all__:
        assert getattr(cfc, name) is not None


OUT_OF_RANGE = ("size N = 8\nvar eta[N] in [0, 1] = 0.5\n"
                "factor link[i in 0..N] = quadratic(eta[i], eta[i+1]; w = 0.5)\n")


def _syntax() -> object:
    return cfc.loads("size N = = 3\n", "m.cfc")


def _check() -> object:
    return cfc.loads("var x in [0, 1]\nfactor f = quadratic(x, y)\n", "m.cfc")


def _bind() -> object:
    return cfc.loads(OUT_OF_RANGE, "m.cfc").compile(backend="python").bind()


def _argument() -> object:
    return cfc.loads("var x\nfactor f = quadratic(x, x)\n", "m.cfc").compile(target="fortran")


def _numeric() -> object:
    model = cfc.loads("var x in [0, 1] = 0.5\nenergy e(x) = log(x - 2)\nfactor f = e(x)\n",
                      "m.cfc")
    return model.compile(backend="python").bind().relax()


CASES: dict[str, tuple[Callable[[], object], type[cfc.CfcError], str | None]] = {
    # name: (bad input, the subclass it raises, the location its message starts with)
    "syntax": (_syntax, cfc.CfcSyntaxError, "m.cfc:1:10"),
    "check": (_check, cfc.CfcCheckError, "m.cfc:2:25"),
    "bind": (_bind, cfc.CfcBindError, "m.cfc:3:48"),
    "argument": (_argument, cfc.CfcArgumentError, None),
    "numeric": (_numeric, cfc.CfcNumericError, "m.cfc:3:12"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_error_is_caught_by_its_own_subclass(case: str) -> None:
    bad, subclass, where = CASES[case]
    others = tuple(c for _, c, _ in CASES.values() if c is not subclass)
    try:
        bad()
    except others as err:  # the wrong subclass: fail with what was raised
        pytest.fail(f"{case}: raised {type(err).__name__}: {err}")
    except subclass as err:
        caught: cfc.CfcError = err
    else:
        pytest.fail(f"{case}: nothing raised")
    assert isinstance(caught, cfc.CfcError) and type(caught) is subclass
    text = str(caught)
    assert "hint: " in text
    assert caught._render_traceback_() == text.splitlines()
    if where is None:
        return
    line = int(where.split(":")[1])
    column = int(where.split(":")[2])
    assert text.startswith(f"{where}: error: "), text
    lines = text.splitlines()
    shown = next(i for i, ln in enumerate(lines) if re.match(rf" *{line} \| ", ln))
    caret = lines[shown + 1]  # the caret sits under the column the location names
    gutter = lines[shown].index("| ") + 2
    assert caret.index("^") - gutter == column - 1, text


def test_environment_error_is_caught_by_its_subclass(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    model = cfc.loads("var x\nfactor f = quadratic(x, x; w = 2)\n", "m.cfc")
    with pytest.raises(cfc.CfcEnvironmentError) as info:
        model.compile(backend="c")
    assert info.value.exit_code == 3
    assert "no-such-compiler" in str(info.value) and "hint: " in str(info.value)


def test_error_kinds_pick_their_subclass_and_survive_pickling() -> None:
    import pickle

    from cfc_dsl.diagnostics import ErrorKind

    err = cfc.CfcError(ErrorKind.DATA, "bad data")
    assert type(err) is cfc.CfcBindError
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is cfc.CfcBindError and str(again) == str(err)


def test_reprs_are_one_line() -> None:
    model = cfc.load(CHAIN)
    compiled = model.compile(backend="python")
    problem = compiled.bind(sizes={"N": 8})
    relaxation = problem.relax(max_steps=20)
    for obj in (model, compiled, problem, relaxation):
        text = repr(obj)
        assert "\n" not in text and text.startswith("<cfc."), text
    assert "'chain'" in repr(model) and "chain.cfc" in repr(model)
