"""Graph stage: a bound model as a bipartite NetworkX graph (variables on one side, factors on
the other, one edge per argument slot).

Validation (`cfc_dsl.runtime.graph.validate`) and figures (`cfc_dsl.runtime.figures.scene`) read the instance tables
directly with NumPy; this graph is the Python API for users who want NetworkX's algorithms:
``problem.to_networkx()``.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from cfc_dsl.runtime.bind.tables import BoundModel, FamilyTable


def factor_key(table: FamilyTable, instance: int) -> str:
    """The node key of one factor: 'link(3)', 'right(2, 5)', 'open()'.

    Parentheses keep factor keys apart from variable keys ('eta[3]'), since a family may
    share its name with a variable.
    """
    at = ", ".join(str(int(v[instance])) for v in table.loops.values())
    return f"{table.name}({at})"


def to_networkx(bound: BoundModel) -> nx.MultiGraph:
    """The variable–factor graph of `bound`.

    Variable nodes are keyed by their element name (``eta[3]``, ``gate``) and carry
    ``kind="variable"``, ``bipartite=0``, ``var``, ``index``, ``flat``, ``lower``, ``upper`` and
    ``initial``. Factor nodes (``link(3)``) carry ``kind="factor"``, ``bipartite=1``, ``family``,
    ``energy``, ``weight``, ``params`` (name -> value) and ``loops`` (loop index -> value).
    Each argument slot is one edge with ``slot`` (the energy's slot name) and ``position``; a
    factor whose two slots hit one variable (``quadratic(x, x)``) has two parallel edges.
    """
    graph = nx.MultiGraph(model=bound.model.name, sizes=dict(bound.sizes))
    names = [bound.element(i) for i in range(bound.n)]
    for v in bound.layout:
        for local in range(v.size):
            flat = v.offset + local
            index = tuple(int(i) for i in np.unravel_index(local, v.shape)) if v.shape else ()
            graph.add_node(names[flat], kind="variable", bipartite=0, var=v.name, index=index,
                           flat=flat, lower=float(bound.lower[flat]),
                           upper=float(bound.upper[flat]), initial=float(bound.x0[flat]),
                           label=names[flat])
    for table in bound.families:
        energy = bound.model.energy(table.energy)
        slot_names = energy.slots
        param_names = energy.param_names
        for k in range(table.size):
            key = factor_key(table, k)
            graph.add_node(key, kind="factor", bipartite=1, family=table.name,
                           energy=table.energy, weight=table.weight, formula=energy.formula(),
                           params={p: float(a[k]) for p, a in zip(param_names, table.params, strict=True)},
                           loops={n: int(a[k]) for n, a in table.loops.items()}, label=key)
            for position, (slot, column) in enumerate(zip(slot_names, table.slots, strict=True)):
                graph.add_edge(key, names[int(column[k])], key=position, slot=slot,
                               position=position)
    return graph


def variable_projection(graph: nx.MultiGraph) -> nx.Graph:
    """Variables joined when some factor touches both (the Markov network of the model)."""
    out = nx.Graph()
    out.add_nodes_from((n, d) for n, d in graph.nodes(data=True) if d["kind"] == "variable")
    for node, data in graph.nodes(data=True):
        if data["kind"] != "factor":
            continue
        touched = sorted(set(graph.neighbors(node)))
        for i, a in enumerate(touched):
            for b in touched[i + 1:]:
                out.add_edge(a, b)
    return out
