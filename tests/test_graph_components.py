"""The NumPy connected components (runtime/graph/components.py) against SciPy's.

The graph check uses its own union-find so that `cfc compile` need not import scipy.sparse;
these tests hold it to SciPy's count and labels (the label order breaks ties in the
"smallest component" note) on random, adversarial and degenerate graphs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components

from cfc_dsl.runtime.graph.components import connected_components


def _scipy(nodes: int, u: np.ndarray, v: np.ndarray) -> tuple[int, np.ndarray]:
    matrix = coo_matrix((np.ones(u.size, np.int8), (u, v)), shape=(nodes, nodes))
    count, labels = scipy_components(matrix, directed=False)
    return int(count), labels


def _graphs() -> list[tuple[str, int, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(12)
    n = 2000
    perm = rng.permutation(n)
    star = rng.permutation(n)
    out = [
        ("path in order", n, np.arange(n - 1), np.arange(1, n)),
        ("path reversed", n, np.arange(n - 1)[::-1] + 1, np.arange(n - 1)[::-1]),
        ("path in random order", n, perm[:-1], perm[1:]),
        ("star on its largest node", n, np.full(n - 1, n - 1), np.arange(n - 1)),
        ("star in random order", n, np.full(n - 1, star[0]), star[1:]),
        ("no edges", 7, np.zeros(0, np.int64), np.zeros(0, np.int64)),
        ("no nodes", 0, np.zeros(0, np.int64), np.zeros(0, np.int64)),
        ("self loops and repeats", 5, np.array([0, 0, 3, 3, 4]), np.array([0, 2, 4, 4, 3])),
    ]
    for k, m in enumerate((n // 4, n // 2, n, 3 * n)):
        out.append((f"random {k}", n, rng.integers(0, n, m), rng.integers(0, n, m)))
    # a variable-factor graph: 3 slots per factor node, nodes after the variables
    factors = 600
    ids = n + np.arange(factors)
    slots = rng.integers(0, n, (3, factors))
    out.append(("bipartite", n + factors, np.tile(ids, 3), slots.reshape(-1)))
    return out


@pytest.mark.parametrize(("name", "nodes", "u", "v"), _graphs(), ids=[g[0] for g in _graphs()])
def test_same_count_and_labels_as_scipy(name: str, nodes: int, u: np.ndarray,
                                        v: np.ndarray) -> None:
    count, labels = connected_components(nodes, u, v)
    want_count, want_labels = _scipy(nodes, u, v)
    assert count == want_count
    assert labels.shape == (nodes,)
    np.testing.assert_array_equal(labels, want_labels)


def test_the_graph_check_does_not_import_scipy() -> None:
    probe = ("import sys\n"
             "from cfc_dsl.frontend import load_file\n"
             "from cfc_dsl.runtime.graph.validate import check_graph\n"
             "report = check_graph(load_file('examples/sequence_redemption.cfc'))\n"
             "assert report.summary is not None\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))\n")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"
