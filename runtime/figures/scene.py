"""Figure scenes: what a factor-graph figure shows, before any output format is chosen.

A `Scene` holds nodes (position and size in points, colour, label as Unicode and as LaTeX),
edges and a legend. `expanded_scene` draws every variable and factor of a bound model;
`families_scene` draws plate notation from the model alone. `cfc_dsl.runtime.figures.dot` and
`cfc_dsl.runtime.figures.tikz` turn a scene into DOT (and SVG/PDF/PNG) or standalone TikZ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfc_dsl import syntax as ast
from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.model import FactorFamily, Model, format_expr, walk
from cfc_dsl.notation import (
    latex_element,
    latex_expr,
    latex_name,
    tex_escape,
    unicode_element,
    unicode_expr,
    unicode_name,
)
from cfc_dsl.runtime.bind.points import load_point
from cfc_dsl.runtime.bind.tables import BoundModel
from cfc_dsl.runtime.figures.layout import expanded_layout
from cfc_dsl.runtime.figures.palette import INK, family_colours, shade, text_on, tint, viridis
from cfc_dsl.runtime.graph.bipartite import factor_key

COLUMN_WIDTH = 3.3 * 72  # points: one column of a two-column paper
MAX_NODES = 2000


@dataclass(frozen=True)
class Node:
    id: str
    kind: str  # variable | factor (expanded view); array | family (families view)
    x: float  # points; in the families view only TikZ uses them (graphviz lays out itself)
    y: float
    size: float  # points: diameter or side; 0 lets the renderer fit the label
    fill: str
    stroke: str
    label: str = ""  # Unicode, drawn inside
    tex: str = ""  # the same label as LaTeX
    font_size: float = 7.0
    font_colour: str = "#000000"
    lines: tuple[tuple[str, str], ...] = ()  # families view: (Unicode, LaTeX) lines
    tooltip: str = ""
    outside: str = ""  # a name drawn beside the node (a scalar too long to fit inside)
    outside_tex: str = ""


@dataclass(frozen=True)
class Edge:
    tail: str
    head: str
    colour: str
    label: str = ""
    tex: str = ""


@dataclass(frozen=True)
class LegendRow:
    glyph: str  # factor | variable
    colour: str
    name: str
    name_tex: str
    formula: str
    formula_tex: str


@dataclass(frozen=True)
class ColourBar:
    title: str
    low: float
    high: float
    colours: tuple[str, ...]


@dataclass(frozen=True)
class Scene:
    model: str
    view: str  # expanded | families
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    legend: tuple[LegendRow, ...]
    colourbar: ColourBar | None
    line_width: float  # points

    @property
    def pinned(self) -> bool:
        """Positions are final (expanded view) rather than left to graphviz's dot."""
        return self.view == "expanded"


# ---------------------------------------------------------------- solutions
def load_solution(path: Path, bound: BoundModel) -> dict[str, np.ndarray]:
    """Variable values from `cfc run --out` output (its "x") or from a plain point file;
    read by the one point-file reader, so `graph --solution` takes what `--init` takes."""
    return dict(load_point(path, {v.name: v.shape for v in bound.layout}, "solution file"))


def _colour_scale(bound: BoundModel, solution: dict[str, np.ndarray]) -> tuple[float, float]:
    chosen = [v for v in bound.layout if v.name in solution]
    low = min((float(bound.lower[v.offset:v.offset + v.size].min()) for v in chosen if v.size),
              default=0.0)
    high = max((float(bound.upper[v.offset:v.offset + v.size].max()) for v in chosen if v.size),
               default=1.0)
    if not (math.isfinite(low) and math.isfinite(high)):
        every = np.concatenate([np.ravel(solution[v.name]) for v in chosen]) if chosen else [0.0]
        low, high = float(np.min(every)), float(np.max(every))
    return (low, high) if high > low else (low, low + 1.0)


def _colourbar(low: float, high: float) -> ColourBar:
    return ColourBar("relaxed value", low, high, tuple(viridis(k / 9) for k in range(10)))


# ---------------------------------------------------------------- legend text
def energy_legend(model: Model, family: FactorFamily) -> tuple[str, str]:
    """('quadratic: w·(x − y)²', LaTeX) for a family's legend entry."""
    energy = model.energy(family.energy)
    text = f"{energy.name}: {unicode_expr(energy.body)}"
    tex = rf"\textsf{{{tex_escape(energy.name)}}}: ${latex_expr(energy.body)}$"
    return text, tex


def _array_legend(bound: BoundModel) -> list[LegendRow]:
    rows = []
    names = {s.name: s for s in bound.model.variables}
    for v in bound.layout:
        if not v.shape:
            continue  # scalars carry their name on the node
        spec = names[v.name]
        text = f"{unicode_name(v.name)}[{', '.join(format_expr(d) for d in spec.shape)}]"
        tex = f"${latex_name(v.name)}[{', '.join(latex_expr(d) for d in spec.shape)}]$"
        count = " × ".join(map(str, v.shape)) + " variables"
        rows.append(LegendRow("variable", "#ffffff", text, tex, count,
                              count.replace("×", r"$\times$")))
    return rows


# ---------------------------------------------------------------- expanded view
def expanded_scene(bound: BoundModel, solution: dict[str, np.ndarray] | None = None,
                   max_nodes: int = MAX_NODES) -> Scene:
    """Every variable (circle) and factor (filled square) at its index-structured position."""
    count = bound.n + sum(t.size for t in bound.families)
    if count > max_nodes:
        raise CfcError(ErrorKind.ARGUMENT,
                       f"the expanded factor graph of {bound.model.name} has {count:,} nodes, "
                       f"more than the limit of {max_nodes:,}", None,
                       "draw plate notation with --view families, bind smaller sizes with --set, "
                       "or raise the limit with --max-nodes N")
    layout = expanded_layout(bound, COLUMN_WIDTH - 24)
    points = np.vstack([layout.variables, *layout.factors]) if count else np.zeros((1, 2))
    lo = points.min(axis=0)

    def at(p: np.ndarray) -> tuple[float, float]:
        return round(float(p[0] - lo[0]), 2), round(float(p[1] - lo[1]), 2)

    values = np.full(bound.n, np.nan)
    colourbar = None
    low = high = 0.0
    if solution:
        values = bound.join(solution, base=values)
        low, high = _colour_scale(bound, solution)
        colourbar = _colourbar(low, high)
    nodes: list[Node] = []
    for v in bound.layout:
        for local in range(v.size):
            flat = v.offset + local
            index = tuple(int(i) for i in np.unravel_index(local, v.shape)) if v.shape else ()
            fill = "#ffffff" if math.isnan(values[flat]) else viridis((values[flat] - low) / (high - low))
            label = unicode_element(v.name, index)
            size = float(layout.variable_size[flat])
            show = size >= 12.0 and (bool(v.shape) or len(label) <= 4)
            x, y = at(layout.variables[flat])
            tip = bound.element(flat) + ("" if math.isnan(values[flat]) else f" = {values[flat]:.4g}")
            nodes.append(Node(bound.element(flat), "variable", x, y, size, fill, INK,
                              label if show else "", latex_element(v.name, index) if show else "",
                              6.5 if v.shape else 7.0, text_on(fill), tooltip=tip,
                              outside="" if show or v.shape else label,
                              outside_tex="" if show or v.shape else f"${latex_name(v.name)}$"))
    colours = family_colours([t.name for t in bound.families])
    edges: list[Edge] = []
    for table, where in zip(bound.families, layout.factors, strict=True):
        colour = colours[table.name]
        for k in range(table.size):
            key = factor_key(table, k)
            x, y = at(where[k])
            nodes.append(Node(key, "factor", x, y, layout.factor_size, colour, colour))
            for column in table.slots:
                edges.append(Edge(key, bound.element(int(column[k])), "#555555"))
    legend = _array_legend(bound) + [
        LegendRow("factor", colours[t.name], t.name, tex_escape(t.name),
                  *energy_legend(bound.model, t.family)) for t in bound.families]
    return Scene(bound.model.name, "expanded", tuple(nodes), tuple(edges), tuple(legend),
                 colourbar, 0.6 if layout.unit >= 14 else 0.45)


# ---------------------------------------------------------------- families view
def _ranges_text(family: FactorFamily) -> tuple[str, str]:
    if family.ranges is None:
        return "", ""
    parts = [f"{r.var} ∈ {unicode_expr(r.start)}..{unicode_expr(r.stop)}"
             for r in family.ranges.ranges]
    tex = [rf"{latex_name(r.var)} \in {latex_expr(r.start)}..{latex_expr(r.stop)}"
           for r in family.ranges.ranges]
    text, tex_text = ", ".join(parts), ", ".join(tex)
    if family.ranges.condition is not None:
        text += f" | {unicode_expr(family.ranges.condition)}"
        tex_text += rf" \mid {latex_expr(family.ranges.condition)}"
    return text, tex_text


def index_map(family: FactorFamily, ref: ast.Name | ast.Index, data: set[str]) -> tuple[str, str]:
    """The edge label of one slot: 'i → i + 1', 'i' (identity), 'edges[e, 0]' (from data)."""
    if isinstance(ref, ast.Name):
        return "", ""
    texts = [format_expr(i) for i in ref.indices]
    tex = [latex_expr(i) for i in ref.indices]
    loops = list(family.loop_vars)
    reads = [n for i in ref.indices for n in walk(i) if isinstance(n, ast.Index) and n.name in data]
    if reads:  # data-driven: name the rows of data it reads, not the arithmetic around them
        shown = list(dict.fromkeys(format_expr(n) for n in reads))
        shown_tex = list(dict.fromkeys(latex_expr(n) for n in reads))
        return ", ".join(shown), ", ".join(shown_tex)
    if texts == loops or not loops:
        return ", ".join(texts), ", ".join(tex)
    return (f"{', '.join(loops)} → {', '.join(texts)}",
            rf"{', '.join(latex_name(v) for v in loops)} \mapsto {', '.join(tex)}")


def families_scene(model: Model, bound: BoundModel | None = None,
                   solution: dict[str, np.ndarray] | None = None) -> Scene:
    """Plate notation: one node per variable array and per factor family."""
    colours = family_colours([f.name for f in model.families])
    data = {d.name for d in model.data}
    sizes = dict(bound.sizes) if bound else {}
    low, high = (_colour_scale(bound, solution) if bound and solution else (0.0, 1.0))
    nodes: list[Node] = []
    edges: list[Edge] = []
    row = 46.0
    # families grouped by the variables they touch, so edges from one array stay together
    order = {v.name: k for k, v in enumerate(model.variables)}

    def touches(f: FactorFamily) -> tuple[int, int]:
        used = [order[r.name] for r in f.slot_args]
        return min(used), max(used)

    families = sorted(model.families, key=touches)  # stable: declaration order within a group
    family_y = {f.name: -row * k for k, f in enumerate(families)}
    array_y: dict[str, float] = {}
    for v in model.variables:
        ys = [family_y[f.name] for f in model.families if any(r.name == v.name for r in f.slot_args)]
        array_y[v.name] = sum(ys) / len(ys) if ys else 0.0
    placed: list[float] = []
    for name in sorted(array_y, key=lambda n: (-array_y[n], n)):
        y = array_y[name]
        while any(abs(y - p) < 40 for p in placed):
            y -= 6
        placed.append(y)
        array_y[name] = y
    for v in model.variables:
        dims = ", ".join(unicode_expr(d) for d in v.shape)
        title = f"{unicode_name(v.name)}[{dims}]" if v.shape else unicode_name(v.name)
        title_tex = f"${latex_name(v.name)}" + (
            f"[{', '.join(latex_expr(d) for d in v.shape)}]" if v.shape else "") + "$"
        bounds = f"∈ [{unicode_expr(v.lower)}, {unicode_expr(v.upper)}]"
        bounds_tex = rf"$\in [{latex_expr(v.lower)}, {latex_expr(v.upper)}]$"
        lines = [(title, title_tex), (bounds, bounds_tex)]
        used = sorted({n.name for d in v.shape for n in walk(d) if isinstance(n, ast.Name)})
        if bound and used:
            at = ", ".join(f"{n} = {sizes[n]}" for n in used if n in sizes)
            at_tex = ", ".join(f"{latex_name(n)} = {sizes[n]}" for n in used if n in sizes)
            lines.append((at, f"${at_tex}$"))
        fill = "#ffffff"
        if bound and solution and v.name in solution:
            mean = float(np.mean(solution[v.name]))
            fill = viridis((mean - low) / (high - low))
            lines.append((f"mean {mean:.3g}", f"mean {mean:.3g}"))
        nodes.append(Node(v.name, "array", 0.0, array_y[v.name], 0.0, fill, INK,
                          font_colour=text_on(fill), lines=tuple(lines)))
    counts = {t.name: (t.size, t.weight) for t in bound.families} if bound else {}
    for f in families:
        ranges, ranges_tex = _ranges_text(f)
        head = f"{f.name}[{ranges}]" if ranges else f.name
        head_tex = rf"\textbf{{{tex_escape(f.name)}}}" + (f"$[{ranges_tex}]$" if ranges else "")
        formula, formula_tex = energy_legend(model, f)
        lines = [(head, head_tex), (formula, formula_tex)]
        if f.name in counts:
            size, weight = counts[f.name]
            extra = f"{size} factor{'s' if size != 1 else ''}"
            extra += f", weight {weight:g}" if weight != 1.0 else ""
            lines.append((extra, extra))
        colour = colours[f.name]
        nodes.append(Node(f"{f.name}()", "family", 84.0, family_y[f.name], 0.0, tint(colour),
                          colour, lines=tuple(lines)))
        for ref in f.slot_args:
            label, tex = index_map(f, ref, data)
            edges.append(Edge(ref.name, f"{f.name}()", shade(colour), label, tex))
    colourbar = _colourbar(low, high) if bound and solution else None
    return Scene(model.name, "families", tuple(nodes), tuple(edges), (), colourbar, 0.8)
