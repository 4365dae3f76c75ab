"""Fuzzing past the checker: grammar-aware programs through parse -> check -> derive -> bounds
-> render -> bind -> one evaluation on the Python reference backend, in-process. Every outcome is a model or a located `CfcError`, never
another exception. The test is a fixed-seed hypothesis run; `make fuzz` (`python
tests/test_fuzz.py`) runs the same strategies for FUZZ_SECONDS and prints what it finds.
"""

from __future__ import annotations

import os
import sys
import time
import traceback

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from cfc_dsl.codegen.bounds import lower_bounds
from cfc_dsl.codegen.ir import lower_module
from cfc_dsl.codegen.render import render
from cfc_dsl.derive import derive_model
from cfc_dsl.diagnostics import CfcError
from cfc_dsl.frontend import load_source
from cfc_dsl.runtime.bind.tables import bind
from cfc_dsl.runtime.problem import CompiledModel, Problem

BUILTINS_1 = ("exp", "log", "sqrt", "abs", "relu", "softplus", "sigmoid", "tanh", "sin", "cos")
BUILTINS_2 = ("min", "max")
ODD_NAMES = ("x", "y", "Sigmoid", "Relu", "Step", "a0", "I", "E", "pi", "N2")
NUMBERS = ("0", "1", "2", "0.5", "-1", "1e-300", "1e308", "9007199254740993", "2^64", "3",
           "1/3", "(-8)", "1e309", "10^400")


@st.composite
def real_expr(draw: st.DrawFn, names: tuple[str, ...], depth: int = 3) -> str:
    """A random body over the built-ins, the operators and `names`."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(names + NUMBERS))
    kind = draw(st.integers(0, 3))
    sub = real_expr(names, depth - 1)
    if kind == 0:
        return f"{draw(st.sampled_from(BUILTINS_1))}({draw(sub)})"
    if kind == 1:
        return f"{draw(st.sampled_from(BUILTINS_2))}({draw(sub)}, {draw(sub)})"
    if kind == 2:
        return f"-({draw(sub)})"
    op = draw(st.sampled_from("+-*/^"))
    return f"({draw(sub)} {op} {draw(sub)})"


@st.composite
def index_expr(draw: st.DrawFn, loop: str) -> str:
    """An integer index over the loop index and the size N (may be out of range: fine)."""
    terms = [loop, "N", "1", "2", "0", "4611686018427387904", "(N - 1)"]
    a, b = draw(st.sampled_from(terms)), draw(st.sampled_from(terms))
    op = draw(st.sampled_from(("+", "-", "*", "//", "%")))
    form = draw(st.integers(0, 2))
    return loop if form == 0 else f"({a} {op} {b}) % N" if form == 1 else f"{a} {op} {b}"


@st.composite
def program(draw: st.DrawFn) -> str:
    n = draw(st.sampled_from((0, 1, 3, 8)))
    lines = [f"size N = {n}", f"param a = {draw(st.sampled_from(NUMBERS[:8]))}",
             f"var v[N] in [{draw(st.sampled_from(('0', '-1', '0.5')))}, 1] = 0.5",
             "var g in [0, 1] = 0.25"]
    energies: list[tuple[str, int, str]] = []
    for k in range(draw(st.integers(1, 3))):
        arity = draw(st.integers(1, 2))
        slots = draw(st.lists(st.sampled_from(ODD_NAMES), min_size=arity, max_size=arity,
                              unique=True))
        param = draw(st.sampled_from(("p", "q", "Step")))
        if param in slots:
            param = "p"
        names = tuple(slots) + (param,)
        body = draw(real_expr(names))
        if energies and draw(st.booleans()):   # call an earlier energy inline
            callee, c_arity, _ = draw(st.sampled_from(energies))
            args = ", ".join(draw(st.sampled_from(names)) for _ in range(c_arity))
            body = f"{body} + e{callee}({args})"
        lines.append(f"energy e{k}({', '.join(slots)}; {param} = 1) = {body}")
        energies.append((str(k), arity, param))
    for f, (name, arity, param) in enumerate(energies):
        if draw(st.booleans()):
            args = ", ".join(f"v[{draw(index_expr('i'))}]" for _ in range(arity))
            cond = draw(st.sampled_from(("", " if i % 2 == 0", " if i < N - 1")))
            lines.append(f"factor f{f}[i in 0..N{cond}] = e{name}({args}; {param} = a)")
        else:
            lines.append(f"factor f{f} = e{name}({', '.join(['g'] * arity)})")
    return "\n".join(lines) + "\n"


def outcome(source: str, full: bool = True) -> str:
    """'model' or 'error' for an acceptable outcome; anything else raises. `full=False`
    stops after derive (several times cheaper: the Lipschitz bounds dominate the rest)."""
    try:
        model = load_source(source, "fuzz.cfc")
        derived = derive_model(model)
        if not full:
            return "model"
        module = lower_module(model.name, "fuzz", derived)
        render(module, model=model, bounds=lower_bounds(derived))
        Problem(CompiledModel(model, None), bind(model)).evaluate()  # NaN: a located error
    except CfcError as err:
        assert err.span is not None or err.exit_code == 2, str(err)
        assert "internal error" not in str(err)
        return "error"
    return "model"


def _fixed(examples: int) -> settings:
    scale = float(os.environ.get("FUZZ_SCALE", "1"))  # FUZZ_SCALE=10 for a longer fixed run
    return settings(max_examples=int(examples * scale), deadline=None, derandomize=True,
                    database=None, suppress_health_check=list(HealthCheck))


@_fixed(1500)
@given(program())
def test_front_half_gives_a_model_or_a_located_error(source: str) -> None:
    outcome(source, full=False)


@_fixed(200)
@given(program())
def test_every_outcome_is_a_model_or_a_located_error(source: str) -> None:
    outcome(source)


def test_python_backend_takes_huge_integer_constants() -> None:
    """A fuzz finding: log(2^64) lambdified to NumPy's log of a Python int (a TypeError)."""
    import math

    import numpy as np

    model = load_source("var v[2] in [0, 1] = 0.5\n"
                        "energy e(x) = log(2^64) * x + 10^400 / 10^399 * x\n"
                        "factor f[i in 0..2] = e(v[i])\n", "big.cfc")
    energy = Problem(CompiledModel(model, None), bind(model)).evaluate(np.array([0.0, 1.0]))
    assert math.isclose(energy.energy, math.log(2.0 ** 64) + 10.0, rel_tol=1e-15)


def main() -> int:
    """`make fuzz`: batches under fresh seeds until FUZZ_SECONDS pass; prints each finding."""
    stop = time.monotonic() + float(os.environ.get("FUZZ_SECONDS", "60"))
    findings: dict[str, str] = {}
    batch = 0

    @settings(max_examples=200, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(program())
    def probe(source: str) -> None:
        if time.monotonic() > stop:
            return
        try:
            outcome(source)
        except Exception:  # a finding: keep the first program per distinct last line
            last = traceback.format_exc().strip().splitlines()[-1]
            findings.setdefault(last, source)

    while time.monotonic() < stop:
        seed(batch)(probe)()
        batch += 1
    for last, source in findings.items():
        print(f"--- {last}\n{source}")
    print(f"fuzz: {batch} batches, {len(findings)} distinct findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
