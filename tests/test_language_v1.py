"""The language's clauses for continuation, gated expansion and observable data (issues 9, 11).

Each form is parsed, checked into the model's frozen fields and bound to numbers, against
values worked out by hand; the clause words stay usable as names; the kernel spec (and so the
generated C) is the same with and without the clauses; an observable named in the model binds
the same array as calling the registry directly, and `--data` overrides it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cfc_dsl.checker import load_text
from cfc_dsl.diagnostics import CfcError
from cfc_dsl.model import ScheduleShape
from cfc_dsl.parser import parse
from cfc_dsl.runtime.bind.tables import DataInput, Setting, bind
from cfc_dsl.runtime.observables import lookup
from cfc_dsl.syntax import DataDecl, FactorDecl, WeightDecl
from conftest import run_cfc

BASE = """size N = 6
param s = 0.1
param c = 0.05
var x[N]
factor local[i in 0..N] = landau(x[i]; a = -0.5, b = 1.0)
factor chain[i in 0..N-1] = quadratic(x[i], x[i+1]; w = 0.5)
"""


def _model(extra: str, base: str = BASE):  # type: ignore[no-untyped-def]
    return load_text(base + extra, "t.cfc")


def _family(model, name: str):  # type: ignore[no-untyped-def]
    return next(f for f in model.families if f.name == name)


# ---------------------------------------------------------------- weight schedules
def test_schedule_parses_into_the_weight_declaration() -> None:
    program = parse(BASE + "weight chain = 1.0 from 0.1 over 40 geometric\n", "t.cfc")
    decl = next(d for d in program.decls if isinstance(d, WeightDecl))
    assert decl.schedule is not None and decl.schedule.shape == "geometric"
    assert decl.schedule.stages.value == 40 and decl.schedule.start.value == 0.1


@pytest.mark.parametrize(("suffix", "shape"), [("", ScheduleShape.LINEAR),
                                               (" linear", ScheduleShape.LINEAR),
                                               (" geometric", ScheduleShape.GEOMETRIC)])
def test_schedule_in_the_model(suffix: str, shape: ScheduleShape) -> None:
    family = _family(_model(f"weight chain = 2.0 from s over 5{suffix}\n"), "chain")
    assert family.schedule is not None and family.schedule.shape is shape
    assert family.schedule.stages == 5 and family.weight.value == 2.0
    assert _family(_model(""), "chain").schedule is None


def test_linear_schedule_binds_to_a_ramp_ending_at_the_weight() -> None:
    table = _family_table(bind(_model("weight chain = 2.0 from s over 5\n")), "chain")
    assert table.weight == 2.0 and table.schedule is not None
    # by hand: 0.1 + (2.0 - 0.1) * k / 4
    assert np.allclose(table.schedule.weights(), [0.1, 0.575, 1.05, 1.525, 2.0])
    assert table.schedule.weight_at(4) == 2.0 and table.schedule.weight_at(99) == 2.0


def test_geometric_schedule_has_a_constant_ratio() -> None:
    table = _family_table(bind(_model("weight chain = 1.0 from 0.01 over 3 geometric\n")),
                          "chain")
    assert np.allclose(table.schedule.weights(), [0.01, 0.1, 1.0])


def test_schedule_follows_set_values() -> None:
    bound = bind(_model("weight chain = 1.0 from s over 3\n"),
                 (Setting("s", 0.5), Setting("weight.chain", 2.0)))
    schedule = _family_table(bound, "chain").schedule
    assert (schedule.start, schedule.end) == (0.5, 2.0)
    assert np.allclose(schedule.weights(), [0.5, 1.25, 2.0])


def test_one_stage_is_the_final_weight() -> None:
    schedule = _family_table(bind(_model("weight chain = 3.0 from 0.1 over 1\n")), "chain").schedule
    assert list(schedule.weights()) == [3.0]


def test_geometric_schedule_refuses_a_negative_parameter_at_bind_time() -> None:
    model = _model("weight chain = 1.0 from s over 3 geometric\n")
    with pytest.raises(CfcError, match="geometric schedule needs weights > 0") as info:
        bind(model, (Setting("s", -1.0),))
    assert info.value.span is not None and info.value.span.line == 7


# ---------------------------------------------------------------- gates
@pytest.mark.parametrize(("clause", "per_instance"), [("gated cost 0.05", False),
                                                      ("gated per instance cost c * 2", True)])
def test_gate_parses_checks_and_binds(clause: str, per_instance: bool) -> None:
    line = f"factor short[i in 0..N-2] = quadratic(x[i], x[i+2]) {clause}\n"
    decl = next(d for d in parse(BASE + line, "t.cfc").decls
                if isinstance(d, FactorDecl) and d.name == "short")
    assert decl.gate is not None and decl.gate.per_instance is per_instance
    family = _family(_model(line), "short")
    assert family.gate is not None and family.gate.per_instance is per_instance
    assert _family(_model(line), "chain").gate is None
    table = _family_table(bind(_model(line)), "short")
    assert table.gate is not None and math.isclose(table.gate.cost, 0.1 if per_instance else 0.05)
    assert table.gate.per_instance is per_instance and table.size == 4


def test_gate_and_schedule_together() -> None:
    model = _model("factor short = quadratic(x[0], x[5]) gated cost c\n"
                   "weight short = 1.0 from 0.1 over 4\n")
    table = _family_table(bind(model, (Setting("c", 0.2),)), "short")
    assert table.gate.cost == 0.2 and table.schedule.stages == 4


# ---------------------------------------------------------------- clause words stay names
def test_clause_words_are_still_names() -> None:
    text = ("size N = 3\nparam cost = 0.5\nparam over = 2\nparam from = 0.1\nparam per = 1\n"
            "var instance[N]\nvar linear\n"
            "factor gated[i in 0..N] = landau(instance[i]; a = cost, b = over)\n"
            "factor geometric = landau(linear; a = per, b = 1) gated cost cost\n"
            "weight gated = 1.0 from from over 3 geometric\n")
    model = load_text(text, "words.cfc")
    assert _family(model, "gated").schedule.start.name == "from"
    assert _family(model, "geometric").gate.cost.name == "cost"


# ---------------------------------------------------------------- kernels do not change
def test_kernel_spec_is_the_same_with_and_without_clauses() -> None:
    plain = _model("factor short = quadratic(x[0], x[5])\nweight chain = 1.0\n")
    staged = _model("factor short = quadratic(x[0], x[5]) gated per instance cost c\n"
                    "weight chain = 1.0 from 0.1 over 40 geometric\n")
    assert plain.kernel_spec() == staged.kernel_spec()
    assert plain.kernel_spec_digest() == staged.kernel_spec_digest()


# ---------------------------------------------------------------- observables
OBS = """size N = 16
data score[N] from sequence_monotonicity(n = 16, position = 5, dip = -0.25, seed = 3)
var x[N] in [-1, 1] = 0.0
factor local[i in 0..N] = compression(x[i]; t = score[i])
"""


def test_observable_source_keeps_literals_with_their_types() -> None:
    decl = next(d for d in parse(OBS, "o.cfc").decls if isinstance(d, DataDecl))
    assert decl.source is not None
    source = load_text(OBS, "o.cfc").data[0].source
    assert source is not None and source.name == "sequence_monotonicity"
    assert source.arguments == (("n", 16), ("position", 5), ("dip", -0.25), ("seed", 3))
    assert isinstance(dict(source.arguments)["n"], int)


def test_observable_binds_the_registry_array() -> None:
    expected = lookup("sequence_monotonicity").call(n=16, position=5, dip=-0.25, seed=3)
    bound = bind(load_text(OBS, "o.cfc"))
    assert np.array_equal(bound.data["score"], expected)
    assert bound.data["score"].dtype == np.float64


def test_observable_binds_an_undeclared_size() -> None:
    text = OBS.replace("size N = 16\n", "")
    assert bind(load_text(text, "o.cfc")).sizes["N"] == 16


def test_data_overrides_the_observable() -> None:
    given = np.linspace(0.0, 1.0, 16)
    bound = bind(load_text(OBS, "o.cfc"), data=(DataInput("score", given),))
    assert np.array_equal(bound.data["score"], given)


def test_observable_errors_point_at_the_call() -> None:
    bad = OBS.replace("seed = 3", "sed = 3")
    with pytest.raises(CfcError, match="has no argument 'sed'") as info:
        bind(load_text(bad, "o.cfc"))
    assert info.value.span.line == 2 and "did you mean 'seed'" in info.value.hint


def test_nothing_is_executed_from_the_file() -> None:
    for text in ("__import__(os)", "sequence_monotonicity(n = N)",
                 "sequence_monotonicity(n = exp(1))"):
        with pytest.raises(CfcError):
            bind(load_text(OBS.replace(OBS.splitlines()[1].split("from ")[1], text), "o.cfc"))


def test_dump_model_shows_the_clauses(tmp_path: Path) -> None:
    path = tmp_path / "m.cfc"
    path.write_text(OBS + "factor chain[i in 0..N-1] = quadratic(x[i], x[i+1]) gated per "
                    "instance cost 0.05\nweight chain = 1.0 from 0.1 over 40 geometric\n")
    out = run_cfc("dump", str(path), "--stage", "model")
    assert out.returncode == 0, out.stderr
    assert ("data score : real from sequence_monotonicity(n = 16, position = 5, dip = -0.25, "
            "seed = 3)") in out.stdout
    assert ("factor chain = quadratic (2 slots) weight 1.0 from 0.1 over 40 geometric gated per "
            "instance cost 0.05") in out.stdout


def _family_table(bound, name: str):  # type: ignore[no-untyped-def]
    return next(t for t in bound.families if t.name == name)
