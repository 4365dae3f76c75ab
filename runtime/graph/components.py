"""Connected components of an undirected graph given as edge lists, with NumPy alone.

`scipy.sparse.csgraph.connected_components` gives the same answer, but importing
scipy.sparse costs ~0.4 s of a cold `cfc compile` (it pulls in scipy.sparse.linalg,
scipy.linalg and, through its array-API layer, NumPy's f2py and testing packages): ten
times the rest of the graph check. So this one function is kept here on purpose: a
vectorised union-find (hook each root onto the smallest root it shares an edge with, then
jump pointers until every node points at its root), as fast as SciPy's on a million nodes.
tests/test_graph_components.py checks it against SciPy, labels included.
"""

from __future__ import annotations

import numpy as np


def connected_components(nodes: int, u: np.ndarray, v: np.ndarray) -> tuple[int, np.ndarray]:
    """(count, labels) of the graph on `nodes` nodes with edges u[i]-v[i].

    Labels number the components in the order of their smallest node (0 for node 0's), as
    SciPy's do, so a caller that breaks ties by label gets the same answer from either.
    """
    parent = np.arange(nodes, dtype=np.int64)  # parent[x] <= x, in x's component
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    while u.size:
        pu, pv = parent[u], parent[v]  # roots: every node points at its root here
        differ = pu != pv
        if not differ.any():
            break
        u, v, pu, pv = u[differ], v[differ], pu[differ], pv[differ]  # the rest stay joined
        np.minimum.at(parent, np.maximum(pu, pv), np.minimum(pu, pv))
        while True:  # pointer jumping: halves every path until each ends at a root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    # each root is its component's smallest node, so ranking the roots orders the labels
    roots, labels = np.unique(parent, return_inverse=True)
    return int(roots.size), labels.reshape(-1)
