"""Figure output: a scene -> a file in the format its name asks for, or SVG for Jupyter.

Sits above the scene builders (scene.py) and the two renderers (dot.py, tikz.py), so that
neither renderer needs to know about the other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.model import Model
from cfc_dsl.runtime.bind.tables import BoundModel, bind
from cfc_dsl.runtime.figures.dot import dot_source, render, renderer_missing
from cfc_dsl.runtime.figures.scene import MAX_NODES, Scene, expanded_scene, families_scene
from cfc_dsl.runtime.figures.tikz import tikz_source
from cfc_dsl.runtime.outputs import write_output

FORMATS = ("dot", "svg", "pdf", "png", "tex")


def figure_format(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise CfcError(ErrorKind.ARGUMENT, f"cannot draw '{path}': unknown figure format "
                       f"'{path.suffix or '(none)'}'", None,
                       "end the output name in .dot, .svg, .pdf, .png or .tex")
    return fmt


def write_figure(scene: Scene, path: Path) -> None:
    """Write `scene` in the format its file name asks for (.dot .svg .pdf .png .tex)."""
    fmt = figure_format(path)
    if fmt in ("svg", "pdf", "png"):
        payload = render(scene, fmt)  # before touching the file: a failed render leaves none
    else:
        payload = (tikz_source(scene) if fmt == "tex" else dot_source(scene)).encode("utf-8")
    write_output(path, payload, "-o")


def repr_svg(model: Model, bound: BoundModel | None = None,
             solution: dict[str, np.ndarray] | None = None) -> str | None:
    """SVG for Jupyter: a bound problem's expanded graph when it has at most MAX_NODES nodes,
    else (and for a bare model) plate notation. None when graphviz is missing, so that
    Jupyter falls back to the text repr."""
    if renderer_missing():
        return None
    if bound is not None and bound.n + sum(t.size for t in bound.families) <= MAX_NODES:
        scene = expanded_scene(bound, solution)
    else:
        if bound is None and all(d.source is not None for d in model.data):
            try:  # default sizes give the families their instance counts
                bound = bind(model)
            except CfcError:
                bound = None
        scene = families_scene(model, bound, solution)
    return render(scene, "svg").decode("utf-8")
