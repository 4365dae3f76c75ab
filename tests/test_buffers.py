"""Gradient buffers reused across calls (runtime/backends/buffers.py): a gradient a caller
still holds is never overwritten by a later evaluation, one it dropped is reused, and the
values stay those of a fresh evaluation (the NumPy reference backend is the oracle)."""

from __future__ import annotations

import numpy as np
import pytest

import cfc_dsl as cfc
from cfc_dsl.runtime.backends.buffers import fsum_list
from cfc_dsl.runtime.backends.native import BackendKind, _bound_call, exact_sum
from tests.conftest import EXAMPLES


def _problems(reorder: str | None = None):  # type: ignore[no-untyped-def]
    model = cfc.load(EXAMPLES / "chain.cfc")
    c = model.compile().bind(sizes={"N": 12}, threads=1, reorder=reorder)
    py = model.compile(backend="python").bind(sizes={"N": 12})
    assert py.backend.kind is BackendKind.PYTHON
    return c, py


def test_held_gradients_are_never_overwritten() -> None:
    c, py = _problems()
    rng = np.random.default_rng(3)
    points = [rng.uniform(0.0, 1.0, 12) for _ in range(8)]
    held = [c.backend.energy_and_grad(x)[2] for x in points]  # more than the pool keeps
    view = held[0][2:5]
    del held[0]  # a view of it still holds the buffer
    for x in points:
        c.backend.energy_and_grad(x)
    np.testing.assert_allclose(view, py.backend.energy_and_grad(points[0])[2][2:5], rtol=1e-12,
                               atol=1e-14)
    for x, g in zip(points[1:], held, strict=True):
        np.testing.assert_allclose(g, py.backend.energy_and_grad(x)[2], rtol=1e-12,
                                   atol=1e-14)


def test_dropped_gradient_is_reused_with_the_same_values() -> None:
    c, _ = _problems()
    x = np.linspace(0.1, 0.9, 12)
    first = c.backend.energy_and_grad(x)[2]
    expected, address = first.copy(), first.ctypes.data
    del first
    again = c.backend.energy_and_grad(x)[2]
    assert again.ctypes.data == address  # the pool's buffer, zeroed before the kernels
    assert again.tobytes() == expected.tobytes()


def test_two_gradients_in_one_expression_differ() -> None:
    c, py = _problems(reorder="rcm")
    x, v = np.full(12, 0.4), np.linspace(-1.0, 1.0, 12)
    diff = c.backend.energy_and_grad(x + 1e-3 * v)[2] - c.backend.energy_and_grad(x)[2]
    oracle = py.backend.energy_and_grad(x + 1e-3 * v)[2] - py.backend.energy_and_grad(x)[2]
    np.testing.assert_allclose(diff, oracle, rtol=1e-7, atol=1e-12)
    assert np.any(diff != 0.0)


def test_fsum_list_matches_exact_sum() -> None:
    for values in ([1e16, 1.0, -1e16], [0.1] * 10, [float("inf"), -float("inf")],
                   [1e308, 1e308], [], [2.5]):
        a, b = fsum_list(list(values)), exact_sum(np.array(values, dtype=float))
        assert np.float64(a).tobytes() == np.float64(b).tobytes()


def _bits(result: tuple[float, np.ndarray, np.ndarray]) -> tuple[bytes, bytes, bytes]:
    f, fam, g = result
    return np.float64(f).tobytes(), fam.tobytes(), g.tobytes()


def test_fast_and_checked_paths_give_the_same_bits() -> None:
    """energy_and_grad inlines its argument checks for a contiguous float64 x and an
    ndarray of weights; every other argument goes through `_x` / `_w`: the same values."""
    c, _ = _problems()
    x = np.random.default_rng(5).uniform(0.0, 1.0, 24)
    w = c.backend.weights * np.array([0.7, 1.3])
    fast = _bits(c.backend.energy_and_grad(x[::2].copy(), w))
    assert _bits(c.backend.energy_and_grad(x[::2], w)) == fast  # not contiguous
    assert _bits(c.backend.energy_and_grad(list(x[::2]), list(w))) == fast
    assert _bits(c.backend.energy_and_grad(x[::2].copy(), w.astype(">f8"))) == fast
    r, _ = _problems(reorder="rcm")  # a permuted layout takes `_x` and `_out` (its kernels
    f, _, g = r.backend.energy_and_grad(x[::2].copy(), w)  # add in another order)
    np.testing.assert_allclose(g, c.backend.energy_and_grad(x[::2].copy(), w)[2], rtol=1e-12)
    assert abs(f - np.frombuffer(fast[0])[0]) <= 1e-12 * abs(f)
    with pytest.raises(ValueError, match="12 values"):
        c.backend.energy_and_grad(x, w)
    with pytest.raises(ValueError, match="2 weights"):
        c.backend.energy_and_grad(x[::2].copy(), np.ones(3))


def test_bound_call_keeps_the_argument_order() -> None:
    def record(*args: object) -> tuple[object, ...]:
        return args

    assert _bound_call(record, (1, 2))(3, 4) == (1, 2, 3, 4)  # functools.partial


EXAMPLE_DATA = {"grid_percolation": {"shortcuts": EXAMPLES / "grid_shortcuts.npy"}}


def _per_family(backend, x: np.ndarray, w: np.ndarray):  # type: ignore[no-untyped-def]
    """One cfc_eg_* call per family into one zeroed gradient, in the kernels' numbering:
    the path cfc_eg_all replaces, called by hand."""
    ffi = backend.ffi
    g = np.zeros(x.size)
    xp, gp = ffi.from_buffer("double[]", x), ffi.from_buffer("double[]", g)
    fam = [float(wf) * eg(*args, float(wf), xp, gp)
           for (eg, _, args, _), wf in zip(backend._calls, w, strict=True)]
    return fsum_list(fam), np.array(fam), g


@pytest.mark.parametrize("reorder", [None, "rcm"])
@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.cfc")), ids=lambda p: p.stem)
def test_eg_all_gives_the_bits_of_one_call_per_family(path, reorder) -> None:  # type: ignore[no-untyped-def]
    """cfc_eg_all (one C call per evaluation) against the per-family kernel calls on every
    example: the same total, family energies and gradient, bit for bit."""
    problem = cfc.load(str(path)).compile().bind(data=EXAMPLE_DATA.get(path.stem, {}),
                                                 threads=1, reorder=reorder)
    backend = problem.backend
    assert backend._all is not None  # no family is threaded: the one-call path is taken
    rng = np.random.default_rng(sum(map(ord, path.stem)))
    x = np.asarray(problem.bound.x0, dtype=np.float64)
    for k in range(3):
        w = backend.weights * (1.0 if k == 0 else rng.uniform(0.5, 2.0, backend.weights.size))
        f, fam, g = backend.energy_and_grad(x, None if k == 0 else w)
        inside = x if backend._perm is None else x[backend._perm]
        ef, efam, eg = _per_family(backend, np.ascontiguousarray(inside), w)
        if backend._inverse is not None:
            eg = eg[backend._inverse]
        assert _bits((f, fam, g)) == _bits((ef, efam, eg)), (path.stem, k)
        x = x + rng.uniform(-0.05, 0.05, x.size)


def test_eg_all_reads_the_weights_at_every_call() -> None:
    """The weights pointer is kept while the same array comes back, so a change made to it
    in place must still show in the next evaluation (as with the per-family path)."""
    c, py = _problems()
    x = np.linspace(0.1, 0.9, 12)
    w = c.backend.weights.copy()
    first = c.backend.energy_and_grad(x, w)
    w *= np.array([2.0, 0.5])
    second = c.backend.energy_and_grad(x, w)
    expected = py.backend.energy_and_grad(x, w)
    np.testing.assert_allclose(second[1], expected[1], rtol=1e-12)
    np.testing.assert_allclose(second[2], expected[2], rtol=1e-12, atol=1e-14)
    assert second[1].tobytes() != first[1].tobytes()
    # the per-family path (taken where a family is threaded) gives the same bits
    c.backend._all = None
    assert _bits(c.backend.energy_and_grad(x, w)) == _bits(second)
