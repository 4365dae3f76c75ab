"""The bind stage: ranges, conditions, index arithmetic, data, inits and overrides become
the right instance tables, and none of it ever recompiles the kernels."""

from __future__ import annotations

import numpy as np
import pytest

import cfc_dsl as cfc
from cfc_dsl.diagnostics import CfcError, ErrorKind


def bind(source: str, **kwargs):  # type: ignore[no-untyped-def]
    """Bind with the Python backend (binding does not depend on the backend)."""
    return cfc.loads(source, "bind_test.cfc").compile(backend="python").bind(**kwargs)


def table(problem, name: str):  # type: ignore[no-untyped-def]
    return problem.bound.families[problem.family_names.index(name)]


def pairs(problem, name: str) -> list[tuple[int, ...]]:  # type: ignore[no-untyped-def]
    return [tuple(int(v) for v in row) for row in zip(*table(problem, name).slots, strict=True)]


def test_ranges_are_half_open() -> None:
    problem = bind("""
size N = 7
var x[N] in [0, 1] = 0.5
factor all[i in 0..N]     = gate_local(x[i])
factor mid[i in 2..5]     = gate_local(x[i])
factor none[i in 3..3]    = gate_local(x[i])
factor back[i in 5..2]    = gate_local(x[i])
factor link[i in 0..N-1]  = quadratic(x[i], x[i+1])
""")
    assert table(problem, "all").slots[0].tolist() == list(range(7))
    assert table(problem, "mid").slots[0].tolist() == [2, 3, 4]
    assert table(problem, "mid").loops["i"].tolist() == [2, 3, 4]
    assert table(problem, "none").size == 0
    assert table(problem, "back").size == 0
    assert pairs(problem, "link") == [(i, i + 1) for i in range(6)]
    problem.evaluate()  # empty families evaluate to 0
    assert problem.evaluate().families["none"] == 0.0


def test_nested_ranges_with_dependent_bounds() -> None:
    problem = bind("""
size N = 5
var x[N] in [0, 1] = 0.5
factor upper[i in 0..N, j in i+1..N] = quadratic(x[i], x[j])
factor grid[i in 0..2, j in 0..3]    = quadratic(x[i], x[j + 2])
""")
    assert pairs(problem, "upper") == [(i, j) for i in range(5) for j in range(i + 1, 5)]
    t = table(problem, "upper")
    assert t.loops["i"].tolist() == [i for i in range(5) for j in range(i + 1, 5)]
    assert t.loops["j"].tolist() == [j for i in range(5) for j in range(i + 1, 5)]
    assert pairs(problem, "grid") == [(i, j + 2) for i in range(2) for j in range(3)]
    # the same graph at another size, without recompiling
    bigger = problem.compiled.bind(sizes={"N": 9})
    assert pairs(bigger, "upper") == [(i, j) for i in range(9) for j in range(i + 1, 9)]


def test_if_filters_instances() -> None:
    problem = bind("""
size N = 20
var x[N] in [0, 1] = 0.5
factor every3[i in 0..N if i % 3 == 0]                    = gate_local(x[i])
factor redeem[i in 0..N-4 if i % 4 == 0]                   = asym_hinge(x[i], x[i+4])
factor band[i in 0..N, j in 0..N if j - i >= 2 and j - i < 4] = quadratic(x[i], x[j])
factor odd[i in 0..N if not (i % 2 == 0) and i != 5]      = gate_local(x[i])
""")
    assert table(problem, "every3").slots[0].tolist() == [0, 3, 6, 9, 12, 15, 18]
    assert pairs(problem, "redeem") == [(i, i + 4) for i in range(0, 16, 4)]
    assert pairs(problem, "band") == [(i, j) for i in range(20) for j in range(20)
                                      if 2 <= j - i < 4]
    assert table(problem, "odd").slots[0].tolist() == [i for i in range(20) if i % 2 and i != 5]


def test_ring_indices_with_modulo() -> None:
    problem = bind("""
size N = 6
var x[N] in [0, 1] = 0.5
factor ring[i in 0..N]   = quadratic(x[i], x[(i + 1) % N])
factor second[i in 0..N] = quadratic(x[i], x[(i + 2) % N])
factor back[i in 0..N]   = quadratic(x[i], x[(i + N - 1) % N])
factor half[i in 0..N]   = quadratic(x[i // 2], x[N - 1 - i])
""")
    assert pairs(problem, "ring") == [(i, (i + 1) % 6) for i in range(6)]
    assert pairs(problem, "second") == [(i, (i + 2) % 6) for i in range(6)]
    assert pairs(problem, "back") == [(i, (i - 1) % 6) for i in range(6)]
    assert pairs(problem, "half") == [(i // 2, 5 - i) for i in range(6)]


EDGE_MODEL = """
size N = 5
data edges[M, 2] : int
data strength[M]
var eta[N] in [0, 1] = 0.5
factor net[e in 0..M] = quadratic(eta[edges[e, 0]], eta[edges[e, 1]]; w = strength[e])
"""


def test_indices_from_integer_data() -> None:
    edges = np.array([[0, 4], [2, 1], [3, 3], [4, 0]])
    strength = np.array([0.5, 1.0, 1.5, 2.0])
    problem = bind(EDGE_MODEL, data={"edges": edges, "strength": strength})
    assert problem.bound.sizes["M"] == 4
    assert pairs(problem, "net") == [tuple(e) for e in edges.tolist()]
    assert table(problem, "net").params[0].tolist() == strength.tolist()
    x = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    expected = sum(w * (x[a] - x[b]) ** 2 for (a, b), w in zip(edges, strength, strict=True))
    assert problem.evaluate(x).energy == pytest.approx(expected, rel=1e-14)


def test_index_out_of_range_from_data_is_a_bind_error() -> None:
    with pytest.raises(CfcError) as info:
        bind(EDGE_MODEL, data={"edges": np.array([[0, 1], [2, 5]]), "strength": np.ones(2)})
    assert info.value.kind is ErrorKind.BIND
    assert "net" in info.value.message


def test_data_from_npy_and_csv(tmp_path) -> None:  # type: ignore[no-untyped-def]
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 0]])
    strength = np.array([0.25, 0.5, 0.75, 1.0, 1.25])
    np.save(tmp_path / "edges.npy", edges)
    np.save(tmp_path / "strength.npy", strength)
    (tmp_path / "edges.csv").write_text("a,b\n" + "\n".join(f"{a},{b}" for a, b in edges) + "\n")
    (tmp_path / "strength.csv").write_text("\n".join(repr(float(v)) for v in strength) + "\n")
    compiled = cfc.loads(EDGE_MODEL, "edges.cfc").compile(backend="python")
    from_npy = compiled.bind(data={"edges": tmp_path / "edges.npy",
                                   "strength": str(tmp_path / "strength.npy")})
    from_csv = compiled.bind(data={"edges": tmp_path / "edges.csv",
                                   "strength": tmp_path / "strength.csv"})
    for problem in (from_npy, from_csv):
        assert problem.bound.sizes["M"] == 5
        assert pairs(problem, "net") == [tuple(e) for e in edges.tolist()]
        assert table(problem, "net").params[0].tolist() == strength.tolist()
        assert problem.bound.data["edges"].dtype == np.int64
    x = np.linspace(0.0, 1.0, 5)
    assert from_npy.evaluate(x).energy == from_csv.evaluate(x).energy


def test_two_dimensional_variables_are_row_major() -> None:
    problem = bind("""
size R = 3
size C = 4
var g in [0, 1] = 0.25
var x[R, C] in [-1, 1] = 0
var z[2] in [0, 1] = 0.5
init x[i in 0..R, j in 0..C] = 0.1 * i + 0.01 * j
factor right[i in 0..R, j in 0..C-1] = quadratic(x[i, j], x[i, j+1])
factor down[i in 0..R-1, j in 0..C]  = quadratic(x[i, j], x[i+1, j])
factor tail[k in 0..2]               = quadratic(z[k], x[R-1, C-1])
""")
    layout = {v.name: v for v in problem.bound.layout}
    assert (layout["g"].offset, layout["x"].offset, layout["z"].offset) == (0, 1, 13)
    assert layout["x"].shape == (3, 4)
    assert pairs(problem, "right") == [(1 + i * 4 + j, 1 + i * 4 + j + 1)
                                       for i in range(3) for j in range(3)]
    assert pairs(problem, "down") == [(1 + i * 4 + j, 1 + (i + 1) * 4 + j)
                                      for i in range(2) for j in range(4)]
    assert pairs(problem, "tail") == [(13, 12), (14, 12)]
    x0 = problem.bound.x0
    assert x0[0] == 0.25
    np.testing.assert_allclose(x0[1:13], [0.1 * i + 0.01 * j for i in range(3) for j in range(4)],
                               rtol=0, atol=1e-15)
    values = problem.bound.split(x0)
    assert values["x"].shape == (3, 4)
    assert values["x"][2, 1] == pytest.approx(0.21, abs=1e-15)
    assert problem.bound.element(1 + 2 * 4 + 1) == "x[2, 1]"


def test_init_with_loop_indices_and_hazard() -> None:
    problem = bind("""
size N = 16
param gain = 0.1
var eta[N] in [0, 1] = 0.5
var gate in [0, 1]
var other[N] in [0, 1] = 0.75
init eta[i in 0..N] = hazard(0.02 * (i % 5) - 0.1, k = 10)
init gate = hazard(gain - 0.05)
init other[i in 0..N if i % 2 == 0] = sigmoid(i - 8)
factor local[i in 0..N] = gate_local(eta[i])
factor g = gate_local(gate)
""")
    values = problem.bound.split(problem.bound.x0)
    i = np.arange(16)
    expected = 1.0 / (1.0 + np.exp(-10.0 * (0.02 * (i % 5) - 0.1)))
    np.testing.assert_allclose(values["eta"], expected, rtol=1e-14)
    assert float(values["gate"]) == pytest.approx(1.0 / (1.0 + np.exp(-10.0 * 0.05)), rel=1e-14)
    other = np.where(i % 2 == 0, 1.0 / (1.0 + np.exp(-(i - 8.0))), 0.75)
    np.testing.assert_allclose(values["other"], other, rtol=1e-14)
    # the init rules see overridden params
    again = problem.compiled.bind(params={"gain": 0.3})
    assert float(again.bound.split(again.bound.x0)["gate"]) == pytest.approx(
        1.0 / (1.0 + np.exp(-10.0 * 0.25)), rel=1e-14)


def test_point_overrides_like_init_option() -> None:
    source = """
size N = 4
var eta[N] in [0, 1] = 0.5
var gate in [0, 1] = 0.2
init eta[i in 0..N] = 0.1 * i
factor local[i in 0..N] = gate_local(eta[i])
factor g = gate_local(gate)
"""
    problem = bind(source, init={"gate": 0.9})
    values = problem.bound.split(problem.bound.x0)
    assert float(values["gate"]) == 0.9
    np.testing.assert_allclose(values["eta"], [0.0, 0.1, 0.2, 0.3])  # left out: its init
    problem = bind(source, init={"eta": [0.4, 0.3, 0.2, 0.1]})
    values = problem.bound.split(problem.bound.x0)
    assert values["eta"].tolist() == [0.4, 0.3, 0.2, 0.1]
    assert float(values["gate"]) == 0.2
    # and the relaxation starts there
    assert problem.relax(max_steps=1).energy_initial == pytest.approx(
        problem.evaluate(problem.bound.x0).energy, rel=1e-15)
    with pytest.raises(CfcError) as info:
        bind(source, init={"gate": 1.5})
    assert info.value.kind is ErrorKind.BIND
    assert "outside its bounds" in info.value.message
    problem = bind(source, init={"eta": 0.6})  # one number for a whole variable
    assert problem.bound.split(problem.bound.x0)["eta"].tolist() == [0.6] * 4
    with pytest.raises(CfcError) as info:
        bind(source, init={"etta": [0.1] * 4})
    assert info.value.kind is ErrorKind.BIND
    assert "did you mean 'eta'" in info.value.hint
    with pytest.raises(CfcError) as info:
        bind(source, init={"eta": [0.1, 0.2]})
    assert info.value.kind is ErrorKind.BIND
    assert "[2]" in info.value.message and "[4]" in info.value.message


PARAM_MODEL = """
size N = 4
param a = -0.5
param h[N] = 0.2
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(eta[i]; a = a, b = 1.0, h = h[i])
factor link[i in 0..N-1] = quadratic(eta[i], eta[i+1]; w = 2 * a)
weight link = 0.5
"""


def test_params_overridden_at_bind() -> None:
    compiled = cfc.loads(PARAM_MODEL, "params.cfc").compile(backend="python")
    default = compiled.bind()
    assert table(default, "local").params[0].tolist() == [-0.5] * 4
    assert table(default, "local").params[2].tolist() == [0.2] * 4
    assert table(default, "link").params[0].tolist() == [-1.0] * 3
    changed = compiled.bind(params={"a": -0.3, "h": 0.05})
    assert table(changed, "local").params[0].tolist() == [-0.3] * 4
    assert table(changed, "local").params[2].tolist() == [0.05] * 4
    assert table(changed, "link").params[0].tolist() == pytest.approx([-0.6] * 3)
    x = np.array([0.1, 0.4, 0.7, 0.2])
    local = sum(-0.3 * v**2 + v**4 - 0.05 * v for v in x)
    assert changed.evaluate(x).families["local"] == pytest.approx(local, rel=1e-14)
    with pytest.raises(CfcError) as info:
        compiled.bind(params={"aa": 1.0})
    assert info.value.kind is ErrorKind.BIND
    assert "did you mean 'a'" in info.value.hint


def test_weights_overridden_at_bind() -> None:
    compiled = cfc.loads(PARAM_MODEL, "params.cfc").compile(backend="python")
    x = np.array([0.1, 0.4, 0.7, 0.2])
    default = compiled.bind()
    assert table(default, "link").weight == 0.5
    assert table(default, "local").weight == 1.0
    heavy = compiled.bind(weights={"link": 3.0, "local": 0.0})
    assert table(heavy, "link").weight == 3.0
    e0, e1 = default.evaluate(x), heavy.evaluate(x)
    assert e1.families["link"] == pytest.approx(6.0 * e0.families["link"], rel=1e-14)
    assert e1.families["local"] == 0.0
    assert e1.energy == pytest.approx(e1.families["link"], rel=1e-14)
    np.testing.assert_allclose(e1.grad, 6.0 * (e0.grad - compiled.bind(weights={"link": 0.0})
                                               .evaluate(x).grad), rtol=1e-12, atol=1e-15)


def test_sizes_and_data_never_recompile() -> None:
    source = EDGE_MODEL.replace("size N = 5", "size N = {n}")
    first = cfc.loads("model rebind\n" + source.format(n=5), "rebind.cfc").compile(backend="c")
    problem = first.bind(data={"edges": np.array([[0, 1]]), "strength": np.ones(1)})
    second_model = cfc.loads("model rebind\n" + source.format(n=500), "rebind.cfc")
    assert second_model.kernel_spec_digest() == first.model.kernel_spec_digest()
    second = second_model.compile(backend="c")
    assert second.info.cache_hit
    assert second.info.digest == first.info.digest
    edges = np.column_stack([np.arange(499), np.arange(1, 500)])
    big = second.bind(sizes={"N": 500}, data={"edges": edges, "strength": np.full(499, 0.5)})
    assert table(big, "net").size == 499
    assert problem.bound.n == 5 and big.bound.n == 500
    # binding again with other sizes, params and data reuses the same loaded kernels
    third = first.model.compile(backend="c")
    assert third.info.cache_hit and third.info.digest == first.info.digest
    assert third.kernels.lib is first.kernels.lib or third.info.path == first.info.path


def test_energy_and_grad_take_a_dict_of_variables() -> None:
    from conftest import EXAMPLES

    problem = cfc.load(str(EXAMPLES / "seed_baseline.cfc")).compile().bind()
    flat = problem.bound.join({"seq": 0.1, "gate": 0.2})
    by_dict = problem.energy_and_grad({"seq": 0.1, "gate": 0.2})
    by_flat = problem.energy_and_grad(flat)
    assert by_dict[0] == by_flat[0]
    np.testing.assert_array_equal(by_dict[2], by_flat[2])
    partial = problem.energy({"seq": 0.1})[0]  # gate keeps its initial value
    assert partial == problem.energy(problem.bound.join({"seq": 0.1}))[0]
