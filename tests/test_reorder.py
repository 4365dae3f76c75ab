"""Locality at bind time: sorted and RCM-renumbered tables give the user's answers.

The C backend keeps the permutation to itself, so the gradient, the Hessian products and
a relaxation agree with the unreordered tables and with the NumPy reference backend (an
independent oracle); a shuffled copy of a model relaxes to the same minimum; a rebind
with the same data reuses the reordering.
"""

from __future__ import annotations

import numpy as np
import pytest

import cfc_dsl as cfc
from cfc_dsl.diagnostics import CfcError
from cfc_dsl.runtime.bind.reorder import Reorder, locality

CONVEX = """\
model convex_edges
size N = 10
var x[N] in [0, 1] = 0.5
data edges[M, 2] : int
data w[M]
data t[N]
factor local[i in 0..N] = compression(x[i]; a = 1.0, t = t[i])
factor quad[e in 0..M]  = quadratic(x[edges[e, 0]], x[edges[e, 1]]; w = w[e])
factor hinge[e in 0..M] = directed_hinge(x[edges[e, 1]], x[edges[e, 0]]; w = w[e])
"""
N = 400


@pytest.fixture(scope="module")
def model(tmp_path_factory):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("reorder") / "convex_edges.cfc"
    path.write_text(CONVEX)
    return cfc.load(path)


def _data(seed: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"edges": rng.integers(0, N, size=(3 * N, 2)), "w": rng.random(3 * N),
            "t": rng.random(N)}


def _bind(model, data, reorder):  # type: ignore[no-untyped-def]
    return model.compile().bind(sizes={"N": N}, data=data, reorder=reorder)


@pytest.mark.parametrize("reorder", ["sort", "rcm"])
def test_values_map_back_to_user_indices(model, reorder) -> None:  # type: ignore[no-untyped-def]
    data = _data()
    plain, moved = _bind(model, data, "none"), _bind(model, data, reorder)
    if reorder == "rcm":
        assert moved.backend.layout.perm is not None  # a real renumbering
    assert moved.backend.layout.orders[1] is not None  # random edges were sorted
    reference = model.compile(backend="python").bind(sizes={"N": N}, data=data)
    rng = np.random.default_rng(0)
    x, v = rng.random(N), rng.standard_normal(N)
    f, fam, g = moved.backend.energy_and_grad(x)
    f0, fam0, g0 = reference.backend.energy_and_grad(x)
    assert f == pytest.approx(f0, rel=1e-12)
    np.testing.assert_allclose(g, g0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(moved.backend.family_grads(x)[2],
                               plain.backend.family_grads(x)[2], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(moved.backend.hvp(x, v), plain.backend.hvp(x, v),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(moved.backend.hess_diag(x), plain.backend.hess_diag(x),
                               rtol=1e-10, atol=1e-12)
    assert moved.energy(x)[0] == pytest.approx(f0, rel=1e-12)


def test_shuffled_copy_relaxes_to_the_same_answer(model) -> None:  # type: ignore[no-untyped-def]
    data = _data()
    order = np.random.default_rng(9).permutation(3 * N)
    shuffled = {"edges": data["edges"][order], "w": data["w"][order], "t": data["t"]}
    results = [_bind(model, d, r).relax(solver="lbfgsb", max_steps=2000, tol=1e-10)
               for d, r in ((data, "none"), (shuffled, "sort"), (shuffled, "rcm"))]
    for r in results[1:]:
        assert r.energy == pytest.approx(results[0].energy, rel=1e-9)
        np.testing.assert_allclose(r.x, results[0].x, atol=1e-5)


def test_rebind_reuses_the_reordering(model) -> None:  # type: ignore[no-untyped-def]
    data = _data()
    a = _bind(model, data, "rcm")
    b = model.compile().bind(sizes={"N": N}, data={**data, "t": data["t"] * 0.5}, reorder="rcm")
    assert a.backend.layout is b.backend.layout  # same index tables: not sorted again
    c = _bind(model, _data(seed=6), "rcm")
    assert c.backend.layout is not a.backend.layout


def test_reorder_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Reorder.parse(None) is Reorder.SORT
    monkeypatch.setenv("CFC_REORDER", "rcm")
    assert Reorder.parse(None) is Reorder.RCM
    with pytest.raises(CfcError, match="unknown reordering"):
        Reorder.parse("random")
    sorted_already = (np.arange(5), np.arange(1, 6) % 5)
    assert locality(5, (sorted_already,), Reorder.SORT).orders == (None,)
