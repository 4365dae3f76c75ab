"""Compile cost (issue 13): long flat chains, deep nesting, and the per-energy worker pool.

A flat sum of thousands of terms parses into a balanced tree (cfc_dsl/parse_tree.py), so
it compiles and evaluates like the sum it is; nesting that is deep for real is still
refused with a located error. Preparing the energies in forked workers
(codegen/prepare.py) gives the same bytes as preparing them in one process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import cfc_dsl as cfc
from cfc_dsl import syntax as ast
from cfc_dsl.diagnostics import CfcError
from cfc_dsl.parse_tree import CHAIN_LIMIT, MAX_DEPTH
from cfc_dsl.parser import parse

ROOT = Path(__file__).resolve().parent.parent


def _terms(n: int) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """`c_k*(x - a_k)^2` joined by + and -, with the coefficients, centres and signs."""
    c = np.array([k % 7 + 1 for k in range(n)], float)
    a = np.array([round((k * 37 % n) / n, 4) for k in range(n)])
    sign = np.where(np.arange(n) % 3 == 2, -1.0, 1.0)
    body = f"{c[0]:g}*(x - {a[0]})^2"
    for k in range(1, n):
        body += f" {'-' if sign[k] < 0 else '+'} {c[k]:g}*(x - {a[k]})^2"
    return body, c, a, sign


def _model(body: str) -> str:
    return (f"model flat\nvar u[3] in [-1, 2] = 0.5\nenergy big(x) = {body}\n"
            "factor f[i in 0..3] = big(u[i])\n")


def _depth(expr: ast.Expr) -> int:
    children = [getattr(expr, f) for f in ("left", "right", "operand") if hasattr(expr, f)]
    return 1 + max((_depth(c) for c in children), default=0)


def _energy_body(text: str) -> ast.Expr:
    program = parse(text, "m.cfc")
    return next(d for d in program.decls if isinstance(d, ast.EnergyDecl)).body


def test_flat_sum_of_2000_terms_matches_numpy() -> None:
    """On the NumPy reference backend: the C compiler would take a minute on 2,000 terms."""
    body, c, a, sign = _terms(2000)
    problem = cfc.loads(_model(body), "flat.cfc").compile(backend="python").bind()
    x = np.array([-0.7, 0.31, 1.9])
    energy, _, grad = problem.energy_and_grad(x)
    d = x[:, None] - a[None, :]
    expected_e = float(np.sum(sign * c * d ** 2))
    expected_g = np.sum(2 * sign * c * d, axis=1)
    assert energy == pytest.approx(expected_e, rel=1e-12, abs=1e-9)
    np.testing.assert_allclose(grad, expected_g, rtol=1e-12, atol=1e-9)


def test_flat_sum_compiles_to_c_and_matches_numpy() -> None:
    body, c, a, sign = _terms(300)
    problem = cfc.loads(_model(body), "flat.cfc").compile(backend="c").bind()
    x = np.array([-0.2, 0.5, 1.3])
    energy, _, grad = problem.energy_and_grad(x)
    d = x[:, None] - a[None, :]
    assert energy == pytest.approx(float(np.sum(sign * c * d ** 2)), rel=1e-12, abs=1e-9)
    np.testing.assert_allclose(grad, np.sum(2 * sign * c * d, axis=1), rtol=1e-12, atol=1e-9)


def test_long_chains_are_shallow_and_short_ones_keep_their_shape() -> None:
    body, *_ = _terms(5000)
    assert _depth(_energy_body(_model(body))) < 40  # log2(5000) levels of +, then a term
    product = " * ".join(f"(1 + x / {k})" for k in range(1, 1001))
    assert _depth(_energy_body(_model(product))) < 40
    short = " - ".join(f"x^{k}" for k in range(1, CHAIN_LIMIT + 1))
    tree = _energy_body(_model(short))
    for k in range(CHAIN_LIMIT, 1, -1):  # left-nested as written: ((x^1 - x^2) - x^3) - ...
        assert isinstance(tree, ast.Binary) and tree.op == "-"
        assert tree.right == ast.Binary("^", ast.Name("x", tree.span),
                                        ast.Number(k, True, tree.span), tree.span)
        tree = tree.left
    assert isinstance(tree, ast.Binary) and tree.op == "^"


def test_regrouped_chain_keeps_signs_and_order() -> None:
    """x1 - x2 + x3 ... regrouped is the same sum: the checker's constant folding of a size
    expression sees the same value."""
    terms = [f"{k}" for k in range(1, 101)]
    expr = " - ".join(terms[:50]) + " + " + " + ".join(terms[50:])
    text = f"size N = {expr}\nvar u[3] = 0\nfactor f[i in 0..3] = landau(u[i]; a = -1, b = 1)\n"
    expected = 1 - sum(range(2, 51)) + sum(range(51, 101))
    cfc.loads(text, "m.cfc")  # and the checker takes it
    program = parse(text, "m.cfc")
    size = program.decls[0]
    assert isinstance(size, ast.SizeDecl)
    assert _evaluate(size.default) == expected


def _evaluate(expr: ast.Expr) -> float:
    if isinstance(expr, ast.Number):
        return expr.value
    assert isinstance(expr, ast.Binary) and expr.op in "+-"
    left, right = _evaluate(expr.left), _evaluate(expr.right)
    return left + right if expr.op == "+" else left - right


def test_deep_nesting_is_still_a_located_error() -> None:
    inner = "x + (" * (MAX_DEPTH + 20) + "x" + ")" * (MAX_DEPTH + 20)
    with pytest.raises(CfcError) as info:
        parse(_model(inner), "deep.cfc")
    err = info.value
    assert "nests its expressions more than" in err.message
    assert err.span is not None and (err.span.line, err.span.column) == (3, 1)
    assert "flat sum" in (err.hint or "")


_DIGEST = textwrap.dedent("""
    import hashlib, sys
    sys.path.insert(0, sys.argv[2])
    import compile_scale
    import cfc_dsl as cfc
    from cfc_dsl.codegen.bounds import model_summary
    from cfc_dsl.codegen.prepare import workers
    from cfc_dsl.codegen.render import render_model
    model = cfc.loads(compile_scale.energies_model(int(sys.argv[1])), "m.cfc")
    out = render_model(model)
    text = out.source + out.header + out.cdef + repr(model_summary(model))
    print(workers(len(model.used_energies)), hashlib.sha256(text.encode()).hexdigest())
""")


def _digest(n: int, workers: str, tmp: Path) -> tuple[int, str]:
    env = {"CFC_COMPILE_WORKERS": workers, "CFC_CACHE_DIR": str(tmp), "PATH": "/usr/bin:/bin",
           "PYTHONHASHSEED": workers}  # a different hash seed too: nothing may depend on it
    out = subprocess.run([sys.executable, "-c", _DIGEST, str(n), str(ROOT / "bench")],
                         env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    count, digest = out.stdout.split()
    return int(count), digest


def test_worker_pool_gives_the_same_bytes(tmp_path: Path) -> None:
    # each its own cache folder: a shared one would hand the pooled run the energies the
    # serial one stored (codegen/prepared_store.py), and it would never fork
    serial = _digest(12, "1", tmp_path / "serial")
    pooled = _digest(12, "2", tmp_path / "pooled")
    assert serial[0] == 1
    if pooled[0] < 2:
        pytest.skip("no fork or a single core here: the pool path does not run")
    assert pooled[1] == serial[1]


def test_energy_error_raised_from_a_worker_is_the_serial_error() -> None:
    """A job that fails in a worker is prepared again in this process, so its CfcError is
    the one a serial compile raises (located, not a pickled traceback)."""
    lines = ["model bad", "var u[2] in [0, 1] = 0.5"]
    for k in range(10):
        body = "log(0)*x" if k == 7 else f"{k + 1}*x^2"
        lines += [f"energy e{k}(x) = {body}", f"factor f{k}[i in 0..2] = e{k}(u[i])"]
    text = "\n".join(lines) + "\n"
    from cfc_dsl.codegen.render import render_model

    model = cfc.loads(text, "bad.cfc")  # the checker lets log(0) through: derive blames it
    with pytest.raises(CfcError) as info:
        render_model(model)
    assert info.value.span is not None and info.value.span.line == 17  # e7's body


def test_memo_overflow_keeps_this_models_energies(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the per-process memo is full it is emptied, but not under the energies this
    call found there: a model that shares energies with the previous one still renders."""
    from cfc_dsl.codegen import prepare

    monkeypatch.setattr(prepare, "_MEMO_SIZE", 3)
    monkeypatch.setattr(prepare, "_MEMO", {})

    def model(n: int) -> cfc.Model:
        lines = ["model m", "var u[2] in [0, 1] = 0.5"]
        for k in range(n):
            lines += [f"energy q{k}(x) = {k + 1}*x^2", f"factor f{k}[i in 0..2] = q{k}(u[i])"]
        return cfc.loads("\n".join(lines) + "\n", "m.cfc")

    first = prepare.prepare_model(model(3))
    second = prepare.prepare_model(model(4))  # three found in the memo, one new: over 3
    assert second[:3] == first and len(second) == 4
    assert [p.kernel.energy for p in second] == ["q0", "q1", "q2", "q3"]


def test_a_recursion_overflow_while_deriving_is_a_located_error() -> None:
    """A body the parser's depth guard lets through can still be too deep for SymPy's
    recursive walks; that is a located error at the energy, never an internal error. The
    interpreter's limit is lowered here so that a small nested body reaches it."""
    from cfc_dsl.codegen.prepare import prepare
    from cfc_dsl.derive import energy_jobs

    text = ("model deep\nvar u[2] in [0, 1] = 0.5\nenergy e(x) = " + "sin(" * 40 + "x"
            + ")" * 40 + "\nfactor f[i in 0..2] = e(u[i])\n")
    [job] = energy_jobs(cfc.loads(text, "deep.cfc"))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(120)
    try:
        with pytest.raises(CfcError) as info:
            prepare(job)
    finally:
        sys.setrecursionlimit(limit)
    assert "nested too deeply to differentiate" in info.value.message
    assert info.value.span is not None and info.value.span.line == 3
