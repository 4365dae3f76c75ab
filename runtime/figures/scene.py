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
from cfc_dsl.runtime.figures.legend import (
    ColourBar,
    LegendFit,
    colour_scale,
    colourbar,
    fit_legend,
    number,
    value_strip,
)
from cfc_dsl.runtime.figures.palette import INK, family_colours, shade, text_on, tint, viridis
from cfc_dsl.runtime.graph.bipartite import factor_key

COLUMN_WIDTH = 3.3 * 72  # points: one column of a two-column paper
LABEL_FONT = 4.5  # points: an index drawn below a small circle
MAX_NODES = 2000


@dataclass(frozen=True)
class Node:
    id: str
    kind: str  # variable | factor | label (expanded view); array | family (families view)
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
    strip: tuple[str, ...] = ()  # families view: the array's sorted values as colours


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
class Scene:
    model: str
    view: str  # expanded | families
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    legend: tuple[LegendRow, ...]
    colourbar: ColourBar | None
    line_width: float  # points
    legend_fit: LegendFit = LegendFit(1, True, 0.0)

    @property
    def pinned(self) -> bool:
        """Positions are final (expanded view) rather than left to graphviz's dot."""
        return self.view == "expanded"


# ---------------------------------------------------------------- solutions
def load_solution(path: Path, bound: BoundModel) -> dict[str, np.ndarray]:
    """Variable values from `cfc run --out` output (its "x") or from a plain point file;
    read by the one point-file reader, so `graph --solution` takes what `--init` takes."""
    return dict(load_point(path, {v.name: v.shape for v in bound.layout}, "solution file"))


def _box(bound: BoundModel, solution: dict[str, np.ndarray]) -> tuple[float, float]:
    """The lowest lower and highest upper bound of the variables in `solution`."""
    chosen = [v for v in bound.layout if v.name in solution and v.size]
    low = min((float(bound.lower[v.offset:v.offset + v.size].min()) for v in chosen), default=0.0)
    high = max((float(bound.upper[v.offset:v.offset + v.size].max()) for v in chosen), default=1.0)
    return low, high


def _solution_scale(bound: BoundModel, solution: dict[str, np.ndarray]) -> ColourBar:
    low, high = colour_scale([solution[v.name] for v in bound.layout if v.name in solution])
    return colourbar(low, high, _box(bound, solution))


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
def _index_label(name: str, index: tuple[int, ...], size: float,
                 labels: bool) -> tuple[str, str, str, float]:
    """(label inside, label beside, its LaTeX, font size) for one variable node."""
    text = unicode_element(name, index)
    if not index:  # a scalar: its name, inside when short enough
        inside = size >= 12.0 and len(text) <= 4
        return (text, "", "", 7.0) if inside else ("", text, f"${latex_name(name)}$", 7.0)
    if size >= 12.0:
        return text, "", "", 6.5
    if not labels:
        return "", "", "", 6.5
    digits = ",".join(map(str, index))
    font = min(6.5, size * 0.9 / max(1.0, 0.6 * len(digits)))
    if font >= 3.5:
        return digits, "", "", round(font, 2)
    return "", digits, digits, LABEL_FONT


def _index_tags(tags: list[tuple[str, float, float, float, str]],
                nodes: list[Node]) -> list[Node]:
    """Index labels beside small circles: below, else above or to a side, wherever the
    label's box touches no node (and no label placed before it)."""
    xy = np.array([(n.x, n.y) for n in nodes]).reshape(-1, 2)
    reach = np.array([n.size / 2 for n in nodes])
    boxes: list[tuple[float, float, float, float]] = []
    out = []
    for key, x, y, size, text in tags:
        w, h = len(text) * 0.6 * LABEL_FONT / 2, LABEL_FONT / 2
        gap = size / 2 + h + 0.6
        sides = [(0.0, -gap), (0.0, gap), (size / 2 + w + 0.6, 0.0), (-(size / 2 + w + 0.6), 0.0),
                 (gap, -gap), (-gap, -gap), (gap, gap), (-gap, gap)]
        best = sides[0]
        for dx, dy in sides:
            cx, cy = x + dx, y + dy
            near = np.clip(xy, [cx - w, cy - h], [cx + w, cy + h])
            if np.any(np.hypot(*(near - xy).T) < reach + 0.3):
                continue
            if any(abs(cx - bx) < w + bw and abs(cy - by) < h + bh for bx, by, bw, bh in boxes):
                continue
            best = (dx, dy)
            break
        cx, cy = round(x + best[0], 2), round(y + best[1], 2)
        boxes.append((cx, cy, w, h))
        out.append(Node(f"{key}:label", "label", cx, cy, 0.0, "none", "none", text, text,
                        LABEL_FONT, INK))
    return out


def _extent(nodes: list[Node]) -> tuple[float, float]:
    if not nodes:
        return 0.0, 0.0
    xs = [n.x - n.size / 2 for n in nodes] + [n.x + n.size / 2 for n in nodes]
    ys = [n.y - n.size / 2 for n in nodes] + [n.y + n.size / 2 for n in nodes]
    return max(xs) - min(xs) + 8.0, max(ys) - min(ys) + 8.0


def expanded_scene(bound: BoundModel, solution: dict[str, np.ndarray] | None = None,
                   max_nodes: int = MAX_NODES, labels: bool = False) -> Scene:
    """Every variable (circle) and factor (filled square) at its index-structured position;
    `labels` puts an index on every array element, beside it when it is too small."""
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
    bar = None
    low = high = 0.0
    if solution:
        values = bound.join(solution, base=values)
        bar = _solution_scale(bound, solution)
        low, high = bar.low, bar.high
    nodes: list[Node] = []
    tags: list[tuple[str, float, float, float, str]] = []
    for v in bound.layout:
        for local in range(v.size):
            flat = v.offset + local
            index = tuple(int(i) for i in np.unravel_index(local, v.shape)) if v.shape else ()
            fill = "#ffffff" if math.isnan(values[flat]) else viridis((values[flat] - low) / (high - low))
            size = float(layout.variable_size[flat])
            inside, beside, beside_tex, font = _index_label(v.name, index, size, labels)
            inside_tex = (latex_element(v.name, index) if inside == unicode_element(v.name, index)
                          else inside)
            x, y = at(layout.variables[flat])
            tip = bound.element(flat) + ("" if math.isnan(values[flat]) else f" = {values[flat]:.4g}")
            nodes.append(Node(bound.element(flat), "variable", x, y, size, fill, INK,
                              inside, inside_tex, font, text_on(fill), tooltip=tip,
                              outside="" if index else beside,
                              outside_tex="" if index else beside_tex))
            if index and beside:  # an index too small for its circle goes beside it
                tags.append((bound.element(flat), x, y, size, beside))
    colours = family_colours([t.name for t in bound.families])
    edges: list[Edge] = []
    for table, where in zip(bound.families, layout.factors, strict=True):
        colour = colours[table.name]
        formula = energy_legend(bound.model, table.family)[0]
        for k in range(table.size):
            key = factor_key(table, k)
            x, y = at(where[k])
            nodes.append(Node(key, "factor", x, y, layout.factor_size, colour, colour,
                              tooltip=f"{key}: {formula}"))
            for column in table.slots:
                edges.append(Edge(key, bound.element(int(column[k])), "#555555"))
    legend = _array_legend(bound) + [
        LegendRow("factor", colours[t.name], t.name, tex_escape(t.name),
                  *energy_legend(bound.model, t.family)) for t in bound.families]
    width, height = _extent(nodes)
    fit = fit_legend([(r.name, r.formula) for r in legend], width, height, 1 if bar else 0)
    nodes += _index_tags(tags, nodes)
    return Scene(bound.model.name, "expanded", tuple(nodes), tuple(edges), tuple(legend),
                 bar, 0.6 if layout.unit >= 14 else 0.45, fit)


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
    bar = _solution_scale(bound, solution) if bound and solution else None
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
        strip: tuple[str, ...] = ()
        if bar and solution and v.name in solution:  # the spread, not a mean
            values = np.asarray(solution[v.name], dtype=np.float64)
            strip = value_strip(values, bar.low, bar.high)
            span = f"min {number(float(values.min()))} · max {number(float(values.max()))}"
            lines.append((span, span.replace("·", r"$\cdot$")))
        nodes.append(Node(v.name, "array", 0.0, array_y[v.name], 0.0, "#ffffff", INK,
                          lines=tuple(lines), strip=strip))
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
    return Scene(model.name, "families", tuple(nodes), tuple(edges), (), bar, 0.8)
