"""Deterministic positions for the expanded factor-graph figure, from the model's index structure.

A 1-D variable array is a chain running left to right (a circle when some factor wraps
around its ends, as `eta[(i + 1) % N]` does), a 2-D array sits on its grid (row 0 on top), a
1-D array whose couplings all come from data gets a seeded spring layout, and scalar
variables sit in a row below, under the elements they are coupled to. Factors sit between
their variables; one-variable factors fan out beside theirs. One grid step is scaled
to fit a column (3.3 in), within readable bounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np

from cfc_dsl import syntax as ast
from cfc_dsl.model import walk
from cfc_dsl.notation import unicode_name
from cfc_dsl.runtime.bind.tables import BoundModel, FamilyTable, VariableLayout

UNARY_DISTANCE = 0.5
UNARY_SPREAD = math.radians(55)
LANE = 0.55


@dataclass(frozen=True)
class Layout:
    """Positions and sizes in points (y up)."""

    variables: np.ndarray  # (n, 2) centres of the state-vector elements
    variable_size: np.ndarray  # (n,) diameters
    factors: tuple[np.ndarray, ...]  # (size, 2) centres per family, in family order
    factor_size: float  # side of a factor square
    unit: float  # points per grid step
    arrangement: dict[str, str]  # variable -> chain | ring | grid | seeded | scalar


def _data_driven(table: FamilyTable, data_names: set[str]) -> bool:
    for ref in table.family.slot_args:
        if isinstance(ref, ast.Index):
            for sub in ref.indices:
                if any(isinstance(n, ast.Index) and n.name in data_names for n in walk(sub)):
                    return True
    return False


def _owner(layout: tuple[VariableLayout, ...], flat: np.ndarray) -> np.ndarray:
    offsets = np.array([v.offset for v in layout])
    return np.searchsorted(offsets, flat, side="right") - 1


def _pairs_within(bound: BoundModel, v: VariableLayout, structural: bool,
                  data_names: set[str]) -> list[tuple[FamilyTable, np.ndarray, np.ndarray]]:
    """(family, local i, local j) for two-slot links whose ends both lie in `v`."""
    out = []
    for table in bound.families:
        if len(table.slots) < 2 or _data_driven(table, data_names) == structural:
            continue
        a, b = table.slots[0] - v.offset, table.slots[1] - v.offset
        inside = (a >= 0) & (a < v.size) & (b >= 0) & (b < v.size) & (a != b)
        if np.any(inside):
            out.append((table, a[inside], b[inside]))
    return out


def _seeded(size: int, links: list[tuple[FamilyTable, np.ndarray, np.ndarray]]) -> np.ndarray:
    """A seeded spring layout per connected component, components packed left to right,
    scaled so that the typical nearest neighbour sits about one grid step away."""
    graph = nx.Graph()
    graph.add_nodes_from(range(size))
    for _, i, j in links:
        graph.add_edges_from(zip(i.tolist(), j.tolist(), strict=True))
    xy = np.zeros((size, 2))
    cursor = 0.0
    parts = sorted((sorted(c) for c in nx.connected_components(graph)), key=lambda c: (-len(c), c[0]))
    for part in parts:
        if len(part) == 1:
            local = np.zeros((1, 2))
        else:
            where = nx.spring_layout(graph.subgraph(part), seed=0, iterations=100)
            local = np.array([where[k] for k in part])
            gaps = np.hypot(*(local[:, None, :] - local[None, :, :]).transpose(2, 0, 1))
            np.fill_diagonal(gaps, np.inf)
            local = local * (1.3 / max(float(np.median(gaps.min(axis=1))), 1e-9))
        local = local - local.min(axis=0)
        xy[part] = local + np.array([cursor, 0.0])
        cursor += float(local[:, 0].max()) + 1.5
    return np.round(xy, 3)


def _arrange(bound: BoundModel, data_names: set[str]) -> dict[str, str]:
    kinds = {}
    for v in bound.layout:
        if not v.shape:
            kinds[v.name] = "scalar"
        elif len(v.shape) >= 2:
            kinds[v.name] = "grid"
        else:
            links = _pairs_within(bound, v, True, data_names)
            wraps = any(np.any(np.abs(i - j) > v.size / 2) for _, i, j in links)
            if wraps and v.size > 2:
                kinds[v.name] = "ring"
            elif not links and _pairs_within(bound, v, False, data_names):
                kinds[v.name] = "seeded"
            else:
                kinds[v.name] = "chain"
    return kinds


def _lanes(bound: BoundModel, v: VariableLayout, ring: bool,
           data_names: set[str]) -> dict[str, int]:
    """Lane per same-array family: nearest-neighbour links on the line, longer ones below."""
    spans = []
    for table, i, j in _pairs_within(bound, v, True, data_names):
        d = np.abs(i - j)
        if ring:
            d = np.minimum(d, v.size - d)
        spans.append((float(np.median(d)), table.name))
    spans.sort()
    first = 0 if spans and spans[0][0] == 1 else 1  # a span-1 link sits between its ends
    return {name: first + rank for rank, (_, name) in enumerate(spans)}


def _place_arrays(bound: BoundModel, kinds: dict[str, str], pos: np.ndarray,
                  data_names: set[str]) -> tuple[float, dict[int, np.ndarray], dict[str, int]]:
    """Positions of array elements; returns the bottom y, outward directions and lanes."""
    top = 0.0
    outward: dict[int, np.ndarray] = {}
    lanes: dict[str, int] = {}
    for v in bound.layout:
        kind = kinds[v.name]
        idx = np.arange(v.size)
        flat = v.offset + idx
        if kind == "chain":
            fam_lanes = _lanes(bound, v, False, data_names)
            lanes.update(fam_lanes)
            y = top - UNARY_DISTANCE - 0.3
            pos[flat] = np.column_stack([idx.astype(float), np.full(v.size, y)])
            up = np.array([0.0, 1.0])
            outward.update({int(f): up for f in flat})
            top = y - LANE * max(fam_lanes.values(), default=0) - 1.6
        elif kind == "ring":
            fam_lanes = _lanes(bound, v, True, data_names)
            lanes.update(fam_lanes)
            radius = max(v.size / (2 * math.pi), 1.2)
            theta = math.pi / 2 - 2 * math.pi * idx / v.size
            centre = np.array([radius, top - radius - UNARY_DISTANCE - 0.3])
            unit = np.column_stack([np.cos(theta), np.sin(theta)])
            pos[flat] = centre + radius * unit
            outward.update({int(f): unit[k] for k, f in enumerate(flat)})
            top = centre[1] - radius - 1.6
        elif kind == "grid":
            rows, cols = v.shape[0], v.size // v.shape[0]
            y0 = top - UNARY_DISTANCE - 0.3
            pos[flat] = np.column_stack([(idx % cols).astype(float), y0 - idx // cols])
            diagonal = np.array([-1.0, 1.0]) / math.sqrt(2)
            outward.update({int(f): diagonal for f in flat})
            top = y0 - (rows - 1) - 1.6
        elif kind == "seeded":
            xy = _seeded(v.size, _pairs_within(bound, v, False, data_names))
            height = float(xy[:, 1].max())
            pos[flat] = xy + np.array([0.0, top - UNARY_DISTANCE - 0.3 - height])
            middle = pos[flat].mean(axis=0)
            for f in flat:
                away = pos[f] - middle
                norm = float(np.hypot(*away))
                outward[int(f)] = away / norm if norm > 1e-9 else np.array([0.0, 1.0])
            top = float(pos[flat][:, 1].min()) - 1.6
    return top, outward, lanes


def _place_scalars(bound: BoundModel, kinds: dict[str, str], pos: np.ndarray,
                   size: np.ndarray, row: float, unit: float) -> dict[int, np.ndarray]:
    """Scalars in one row below the arrays, each under the elements it is coupled to."""
    scalars = [v for v in bound.layout if kinds[v.name] == "scalar"]
    neighbours: dict[int, set[int]] = {v.offset: set() for v in scalars}
    for table in bound.families:
        if len(table.slots) < 2:
            continue
        cols = np.column_stack(table.slots)
        for flat in neighbours:
            touching = np.any(cols == flat, axis=1)
            neighbours[flat].update(int(x) for x in np.unique(cols[touching]))
    is_scalar = np.zeros(bound.n, bool)
    is_scalar[[v.offset for v in scalars]] = True
    spacing = max(2 * unit, 44.0)
    cursor = 0.0
    taken: list[float] = []
    for v in scalars:
        near = sorted(n for n in neighbours[v.offset] if not is_scalar[n])
        x = float(np.mean(pos[near, 0])) if near else cursor
        while any(abs(x - t) < spacing * 0.75 for t in taken):
            x += spacing
        taken.append(x)
        cursor = max(cursor, x + spacing)
        pos[v.offset] = (x, row - size[v.offset] / 2)
    outward = {}
    for v in scalars:
        near = [n for n in neighbours[v.offset] if n != v.offset]
        away = pos[v.offset] - pos[near].mean(axis=0) if near else np.array([0.0, 1.0])
        norm = float(np.hypot(*away))
        outward[v.offset] = away / norm if norm > 1e-9 else np.array([0.0, 1.0])
    return outward


def _rotate(vectors: np.ndarray, angles: np.ndarray) -> np.ndarray:
    c, s = np.cos(angles), np.sin(angles)
    return np.column_stack([c * vectors[:, 0] - s * vectors[:, 1],
                            s * vectors[:, 0] + c * vectors[:, 1]])


def _place_factors(bound: BoundModel, kinds: dict[str, str], pos: np.ndarray, size: np.ndarray,
                   outward: np.ndarray, lanes: dict[str, int], unit: float,
                   factor_size: float) -> list[np.ndarray]:
    # one-variable factors of several families on one variable fan out around its outward
    # direction instead of stacking: rank them per variable
    unary_total = np.zeros(bound.n, np.int64)
    for table in bound.families:
        if len(table.slots) == 1:
            unary_total += np.bincount(table.slots[0], minlength=bound.n)
    unary_seen = np.zeros(bound.n, np.int64)
    out = []
    for table in bound.families:
        if not table.size:
            out.append(np.zeros((0, 2)))
            continue
        if len(table.slots) == 1:
            column = table.slots[0]
            rank = unary_seen[column].astype(float)
            np.add.at(unary_seen, column, 1)
            angle = (rank - (unary_total[column] - 1) / 2) * UNARY_SPREAD
            reach = np.maximum(UNARY_DISTANCE * unit, size[column] / 2 + factor_size / 2 + 3.0)
            out.append(pos[column] + reach[:, None] * _rotate(outward[column], angle))
            continue
        centre = np.mean([pos[c] for c in table.slots], axis=0)
        lane = lanes.get(table.name, 0)
        if lane:
            first = bound.layout[int(_owner(bound.layout, table.slots[0][:1])[0])]
            step = max(LANE * unit, size[first.offset] / 2 + factor_size / 2 + 2.0) * lane
            if kinds[first.name] == "ring":
                inward = pos[first.offset:first.offset + first.size].mean(axis=0) - centre
                norm = np.hypot(inward[:, 0], inward[:, 1])[:, None]
                centre = centre + step * inward / np.maximum(norm, 1e-9)
            else:
                centre = centre + np.array([0.0, -step])
        out.append(centre)
    return out


def _separate(variables: np.ndarray, size: np.ndarray, factors: list[np.ndarray],
              factor_size: float, unit: float) -> None:
    """Push factors off nodes they sit on (a midpoint on a variable, a shortcut on a bond)."""
    r_factor = factor_size / 2
    reach = float(size.max(initial=0.0)) / 2 + r_factor + 0.5
    cells: dict[tuple[int, int], list[tuple[float, float, float]]] = {}

    def key(x: float, y: float) -> tuple[int, int]:
        return math.floor(x / reach), math.floor(y / reach)

    def free(x: float, y: float) -> bool:
        kx, ky = key(x, y)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for qx, qy, r in cells.get((kx + dx, ky + dy), ()):
                    if (x - qx) ** 2 + (y - qy) ** 2 < (r + r_factor + 0.5) ** 2:
                        return False
        return True

    def add(x: float, y: float, r: float) -> None:
        cells.setdefault(key(x, y), []).append((x, y, r))

    for (x, y), s in zip(variables.tolist(), size.tolist(), strict=True):
        add(x, y, s / 2)
    step = max(0.3 * unit, factor_size + 2.0)
    tries = [(math.cos(a) * step * r, math.sin(a) * step * r)
             for r in (1.0, 1.5, 2.0, 3.0) for a in np.radians(np.arange(-90, 270, 45))]
    for block in factors:
        for k in range(block.shape[0]):
            x, y = float(block[k, 0]), float(block[k, 1])
            if not free(x, y):
                for tx, ty in tries:
                    if free(x + tx, y + ty):
                        x, y = x + tx, y + ty
                        break
            block[k] = (x, y)
            add(x, y, r_factor)


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(np.einsum("ij,ij->i", p - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab),
                                                              1e-12), 0.0, 1.0)
    return np.hypot(*(a + t[:, None] * ab - p).T)


def _clear_edges(bound: BoundModel, data_names: set[str], variables: np.ndarray,
                 size: np.ndarray, factors: list[np.ndarray], factor_size: float,
                 unit: float) -> None:
    """Move a factor off the edges of other factors (a `redeem` square on the straight line
    from eta[D] to its `repair` factor would read as part of it). Only edges of index-driven
    families count: data-driven shortcuts cross the grid wherever their data say."""
    tail, head, owner = [], [], []
    for f, (table, block) in enumerate(zip(bound.families, factors, strict=True)):
        if _data_driven(table, data_names):
            continue
        for column in table.slots:
            tail.append(variables[column])
            head.append(block)
            owner.append(np.column_stack([np.full(table.size, f), np.arange(table.size)]))
    if not tail:
        return
    a, b, own = np.vstack(tail), np.vstack(head), np.vstack(owner)
    margin = factor_size / 2 + 0.75
    step = max(0.3 * unit, factor_size + 2.0)
    tries = [(math.cos(t) * step * r, math.sin(t) * step * r) for r in (1.0, 1.5, 2.0, 3.0)
             for t in np.radians([0, 180, 45, 135, -45, -135, 90, -90])]

    def others(f: int, k: int) -> np.ndarray:
        return ~((own[:, 0] == f) & (own[:, 1] == k))

    def on_edge(xy: np.ndarray, keep: np.ndarray) -> bool:
        return bool(np.any(_segment_distance(xy, a[keep], b[keep]) < margin))

    def clear_of_nodes(xy: np.ndarray, f: int, k: int) -> bool:
        if np.any(np.hypot(*(variables - xy).T) < size / 2 + margin):
            return False
        for g, block in enumerate(factors):
            gap = np.hypot(*(block - xy).T)
            if g == f:
                gap[k] = np.inf
            if np.any(gap < factor_size + 0.5):
                return False
        return True

    for f, block in enumerate(factors):
        for k in range(block.shape[0]):
            keep = others(f, k)
            if not on_edge(block[k], keep):
                continue
            for dx, dy in tries:
                xy = block[k] + np.array([dx, dy])
                if clear_of_nodes(xy, f, k) and not on_edge(xy, keep):
                    block[k] = xy
                    b[~keep] = xy  # the moved factor's own edges follow it
                    break


def expanded_layout(bound: BoundModel, width: float = 214.0, height: float = 300.0) -> Layout:
    """Positions in points; `width` and `height` bound the arrays' extent (one column)."""
    data_names = {d.name for d in bound.model.data}
    kinds = _arrange(bound, data_names)
    grid = np.zeros((bound.n, 2))
    bottom, outward_of, lanes = _place_arrays(bound, kinds, grid, data_names)
    in_array = np.zeros(bound.n, bool)
    for v in bound.layout:
        in_array[v.offset:v.offset + v.size] = kinds[v.name] != "scalar"
    if np.any(in_array):
        extent = grid[in_array].max(axis=0) - grid[in_array].min(axis=0) + 1.0
        unit = float(np.clip(min(width / extent[0], height / extent[1]), 7.0, 34.0))
    else:
        unit = 48.0  # scalars only: a small drawing, so give it room beside its legend
    array_size = min(max(0.42 * unit, 3.0), 17.0)
    factor_size = min(max(0.22 * unit, 2.5), 7.0)
    size = np.full(bound.n, array_size)
    for v in bound.layout:
        if kinds[v.name] == "scalar":
            size[v.offset] = max(array_size, 18.0 if len(unicode_name(v.name)) <= 4 else 6.0)
    pos = grid * unit
    row = (bottom + 1.6) * unit - max(1.2 * unit, 18.0) if np.any(in_array) else 0.0
    outward_of.update(_place_scalars(bound, kinds, pos, size, row, unit))
    outward = np.array([outward_of.get(i, (0.0, 1.0)) for i in range(bound.n)]).reshape(-1, 2)
    factors = _place_factors(bound, kinds, pos, size, outward, lanes, unit, factor_size)
    _separate(pos, size, factors, factor_size, unit)
    _clear_edges(bound, data_names, pos, size, factors, factor_size, unit)
    return Layout(np.round(pos, 2), size, tuple(np.round(f, 2) for f in factors), factor_size,
                  unit, kinds)
