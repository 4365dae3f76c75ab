"""Bond percolation on an n x n grid: the giant-component fraction and who belongs to it.

Follows the research code's `build_grid_bond_graph` (SEED_SPEC 2.4): every grid bond is kept
when u <= p (u from Python's `random.Random(seed)`, bonds in NetworkX's grid order), then
floor(shortcut_frac x kept bonds) attempts at a shortcut between two random distinct cells.
Cells are numbered i*n + j, the flat index a model's `x[L, L]` uses.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import numpy as np

from cfc_dsl.runtime.observables.registry import observable

if TYPE_CHECKING:  # networkx only when an observable is computed: binding imports none
    import networkx as nx


def bond_grid(n: int, p: float, shortcut_frac: float = 0.0, seed: int = 0) -> nx.Graph:
    """The percolated grid as a NetworkX graph on cells 0..n*n-1."""
    if n < 1 or not 0.0 <= p <= 1.0 or shortcut_frac < 0.0:
        raise ValueError(f"need n >= 1, 0 <= p <= 1 and shortcut_frac >= 0, got n={n}, p={p}, "
                         f"shortcut_frac={shortcut_frac}")
    import networkx as nx

    rng = random.Random(seed)
    graph = nx.Graph()
    graph.add_nodes_from(range(n * n))
    for (i, j), (k, m) in nx.grid_2d_graph(n, n).edges():
        if rng.random() <= p:
            graph.add_edge(i * n + j, k * n + m)
    for _ in range(int(shortcut_frac * graph.number_of_edges())):
        a, b = rng.randrange(n * n), rng.randrange(n * n)
        if a != b:
            graph.add_edge(a, b)  # a repeated pair collapses, as in the research code
    return graph


def _giant(graph: nx.Graph) -> set[int]:
    """The largest component; among equally large ones, the one holding the smallest cell."""
    import networkx as nx

    components = list(nx.connected_components(graph))
    if not components:
        return set()
    return max(components, key=lambda c: (len(c), -min(c)))


def giant_component_fraction(graph: nx.Graph) -> float:
    """|largest connected component| / |cells| (0 for an empty graph)."""
    count = graph.number_of_nodes()
    return len(_giant(graph)) / count if count else 0.0


def giant_component_membership(graph: nx.Graph) -> np.ndarray:
    """1.0 for each cell in the largest component, else 0.0, indexed by cell number."""
    out = np.zeros(graph.number_of_nodes())
    out[sorted(_giant(graph))] = 1.0
    return out


def bond_list(graph: nx.Graph) -> np.ndarray:
    """The graph's edges as an int64 array [E, 2] of cell pairs, smaller cell first, sorted."""
    pairs = sorted((min(a, b), max(a, b)) for a, b in graph.edges())
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


@observable
def percolation_fraction(*, n: int = 50, p: float = 0.5, shortcut_frac: float = 0.0,
                         seed: int = 0) -> np.ndarray:
    """Giant-component fraction (a scalar) of a seeded n x n bond-percolation grid."""
    return np.asarray(giant_component_fraction(bond_grid(n, p, shortcut_frac, seed)))


@observable
def percolation_membership(*, n: int = 50, p: float = 0.5, shortcut_frac: float = 0.0,
                           seed: int = 0) -> np.ndarray:
    """Giant-component membership [n, n] (1.0 in it, 0.0 not) of a seeded percolation grid."""
    return giant_component_membership(bond_grid(n, p, shortcut_frac, seed)).reshape(n, n)


@observable
def percolation_bonds(*, n: int = 50, p: float = 0.5, shortcut_frac: float = 0.0,
                      seed: int = 0) -> np.ndarray:
    """Kept bonds and shortcuts [E, 2] (int cell pairs i*n + j) of a seeded percolation grid."""
    return bond_list(bond_grid(n, p, shortcut_frac, seed))
