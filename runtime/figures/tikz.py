"""Standalone TikZ output for figure scenes (`templates/figure.tex.j2`).

Needs no graphviz: the expanded view uses the scene's own positions, and the families view
puts the variable arrays in one column and the factor families in the next. The file
compiles with pdflatex (standalone, tikz, amsmath) and its picture can be pasted into a paper.
"""

from __future__ import annotations

from collections import Counter
from importlib import resources
from typing import Any

import jinja2

from cfc_dsl.runtime.figures.legend import number
from cfc_dsl.runtime.figures.palette import INK
from cfc_dsl.runtime.figures.scene import Scene
from cfc_dsl.version import __version__

EDGE_GREY = "#555555"


def _environment() -> jinja2.Environment:
    folder = resources.files("cfc_dsl.templates")
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: folder.joinpath(name).read_text("utf-8")),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False)


def _rgb(colour: str) -> str:
    r, g, b = (int(colour[k:k + 2], 16) for k in (1, 3, 5))
    return f"{{rgb,255:red,{r};green,{g};blue,{b}}}"


def _num(value: float) -> str:
    text = f"{value + 0.0:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def tikz_source(scene: Scene) -> str:
    family_hex = [row.colour for row in scene.legend if row.glyph == "factor"]
    family_hex += [n.stroke for n in scene.nodes if n.kind == "family"]
    colours = [("ink", INK[1:]), ("edgegrey", EDGE_GREY[1:])]
    family_colour: dict[str, str] = {}
    for hex_colour in family_hex:
        if hex_colour not in family_colour:
            family_colour[hex_colour] = f"fam{len(family_colour)}"
            colours.append((family_colour[hex_colour], hex_colour[1:]))
    names = {node.id: f"n{k}" for k, node in enumerate(scene.nodes)}
    where = {node.id: node for node in scene.nodes}
    nodes: list[dict[str, Any]] = []
    lines: list[dict[str, str]] = []
    links: list[dict[str, Any]] = []
    for node in scene.nodes:
        if node.kind == "label":
            style = f"index, text={_rgb(node.font_colour)}"
            text = node.tex
        elif node.kind == "variable":
            style = (f"var, minimum size={_num(node.size)}pt, fill={_rgb(node.fill)}, "
                     f"text={_rgb(node.font_colour)}")
            text = f"${node.tex}$" if node.tex else ""
            if node.outside:
                style += f", label={{[font=\\scriptsize]above:{node.outside_tex}}}"
        elif node.kind == "factor":
            style = (f"factor, minimum size={_num(node.size)}pt, "
                     f"fill={family_colour.get(node.fill, _rgb(node.fill))}")
            text = ""
        else:
            anchor = "east" if node.kind == "array" else "west"
            style = (f"{node.kind}, anchor={anchor}, fill={_rgb(node.fill)}, "
                     f"draw={family_colour.get(node.stroke, _rgb(node.stroke))}, "
                     f"text={_rgb(node.font_colour)}")
            text = r" \\[1pt] ".join(tex for _, tex in node.lines)
            if node.strip:  # the array's sorted values, min to max
                text += r" \\[1pt] " + "".join(
                    rf"\textcolor[HTML]{{{c[1:]}}}{{\rule{{4pt}}{{3.5pt}}}}" for c in node.strip)
        nodes.append({"name": names[node.id], "x": _num(node.x), "y": _num(node.y),
                      "style": style, "text": text})
    if scene.pinned:
        for edge in scene.edges:
            a, b = where[edge.tail], where[edge.head]
            lines.append({"x1": _num(a.x), "y1": _num(a.y), "x2": _num(b.x), "y2": _num(b.y)})
    else:
        total = Counter((e.tail, e.head) for e in scene.edges)
        seen: Counter[tuple[str, str]] = Counter()
        for edge in scene.edges:
            pair = (edge.tail, edge.head)
            shift = ((total[pair] - 1) / 2 - seen[pair]) * 10  # parallel slots side by side
            seen[pair] += 1
            links.append({"tail": names[edge.tail], "head": names[edge.head],
                          "colour": _rgb(edge.colour), "shift": _num(shift),
                          "label": f"${edge.tex}$" if edge.tex else ""})
    if scene.colourbar:
        colours += [(f"bar{k}", c[1:]) for k, c in enumerate(scene.colourbar.colours)]
    fit = scene.legend_fit
    columns = max(1, fit.columns)
    entries = []
    for row in scene.legend:
        glyph = (rf"\textcolor[HTML]{{{row.colour[1:]}}}{{\rule{{4.5pt}}{{4.5pt}}}}"
                 if row.glyph == "factor" else r"$\circ$")
        name = rf"\texttt{{{row.name_tex}}}" if row.glyph == "factor" else row.name_tex
        entries.append([glyph, name] + ([row.formula_tex] if fit.formulas else []))
    per = 3 if fit.formulas else 2
    legend = []  # key table rows: `columns` entries side by side
    for k in range(0, len(entries), columns):
        cells = [c for e in entries[k:k + columns] for c in e]
        legend.append(" & ".join(cells + [""] * (per * columns - len(cells))))
    spec = r"@{\hspace{8pt}}".join([r"c@{\hspace{2pt}}l" + (r"@{\hspace{4pt}}l" if fit.formulas
                                                             else "")] * columns)
    colourbar = None
    if scene.colourbar:
        cb = scene.colourbar
        colourbar = {"title": cb.title, "low": number(cb.low), "high": number(cb.high),
                     "bounds": f"{number(cb.bound_low)} to {number(cb.bound_high)}",
                     "stops": [(f"bar{k}", f"bar{k + 1}") for k in range(len(cb.colours) - 1)],
                     "span": per * columns}
    low_y = min((n.y - n.size / 2 for n in scene.nodes), default=0.0)
    low_x = min((n.x - n.size / 2 for n in scene.nodes), default=0.0)
    if not scene.pinned:
        low_x = -80.0
        low_y = min((n.y for n in scene.nodes), default=0.0) - 24
    return _environment().get_template("figure.tex.j2").render(
        provenance=f"generated by cfc {__version__}: {scene.view} view of {scene.model}; "
                   "do not edit",
        model=scene.model, colours=colours, line_width=_num(scene.line_width), nodes=nodes,
        lines=lines, links=links, legend=legend, colourbar=colourbar, spec=spec,
        legend_x=_num(low_x), legend_y=_num(low_y - 8))
