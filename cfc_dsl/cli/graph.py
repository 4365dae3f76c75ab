"""`cfc graph`: draw a model's factor graph as DOT, SVG, PDF, PNG or standalone TikZ.

    cfc graph chain.cfc -o chain.pdf --set N=8            # every variable and factor
    cfc graph chain.cfc -o chain.svg --view families      # plate notation
    cfc graph chain.cfc -o relaxed.png --solution out.json  # coloured by `cfc run --out`
    cfc graph chain.cfc -o chain.svg --labels             # an index on every element

Registered by `cli.py` when this module exists; the drawing lives in `cfc_dsl.runtime.figures`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cfc_dsl.diagnostics import CfcError, ErrorKind


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    subparsers.add_parser("graph", help="draw the factor graph (dot, svg, pdf, png, tex)",
        fill=_arguments)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model")
    p.add_argument("-o", "--out", required=True, metavar="PATH",
                   help="output file; its extension picks the format: .dot .svg .pdf .png .tex")
    p.add_argument("--view", choices=["expanded", "families"], default="expanded",
                   help="expanded (default): every variable and factor; families: plate "
                   "notation, one node per variable array and factor family")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="set a size, parameter or weight.FAMILY (repeatable)")
    p.add_argument("--data", action="append", default=[], metavar="NAME=PATH",
                   help="a data array from a .npy or .csv file (repeatable)")
    p.add_argument("--solution", metavar="PATH.json",
                   help="colour variables by their value in this 'cfc run --out' file")
    p.add_argument("--labels", action="store_true",
                   help="expanded view: an index on every array element (beside it when the "
                   "circle is too small); elements large enough are labelled anyway")
    p.add_argument("--max-nodes", type=int, default=None, metavar="N",
                   help="largest expanded graph to draw (default 2000)")
    p.set_defaults(handler=cmd_graph)


def cmd_graph(args: argparse.Namespace) -> int:
    from cfc_dsl.cli.common import parse_data, parse_settings
    from cfc_dsl.frontend import load_file
    from cfc_dsl.runtime.bind.tables import bind
    from cfc_dsl.runtime.figures.dot import INSTALL_HINT, renderer_missing
    from cfc_dsl.runtime.figures.output import figure_format, write_figure
    from cfc_dsl.runtime.figures.scene import (
        MAX_NODES,
        expanded_scene,
        families_scene,
        load_solution,
    )
    from cfc_dsl.runtime.outputs import check_output

    out = Path(args.out)
    fmt = figure_format(out)
    check_output(out, "-o", [("model file", args.model), ("--solution file", args.solution)]
                 + [("data file", item.partition("=")[2]) for item in args.data], "graph.svg")
    why = renderer_missing() if fmt in ("svg", "pdf", "png") else None
    if why:  # say so before any binding work
        raise CfcError(ErrorKind.ENVIRONMENT, why, None, INSTALL_HINT)
    if args.max_nodes is not None and args.max_nodes < 1:
        raise CfcError(ErrorKind.ARGUMENT, f"--max-nodes must be at least 1, got {args.max_nodes}",
                       None, "for example --max-nodes 5000")
    model = load_file(args.model)
    settings, data = parse_settings(args.set), parse_data(args.data)
    given = {d.name for d in data}
    needs_bind = (args.view == "expanded" or args.solution or settings or data
                  or all(d.name in given or d.source is not None for d in model.data))
    bound = bind(model, settings, data) if needs_bind else None
    solution = load_solution(Path(args.solution), bound) if args.solution and bound else None
    if args.view == "expanded":
        assert bound is not None
        scene = expanded_scene(bound, solution, args.max_nodes or MAX_NODES, args.labels)
    else:
        scene = families_scene(model, bound, solution)
    write_figure(scene, out)
    what = (f"{bound.n} variables, {sum(t.size for t in bound.families)} factors"
            if bound is not None and args.view == "expanded" else
            f"{_count(len(model.variables), 'variable')}, "
            f"{_count(len(model.families), 'factor family', 'factor families')}")
    print(f"wrote {out} ({args.view} view of {model.name}: {what})")
    if fmt == "tex":
        print("  compile it with: pdflatex " + out.name, file=sys.stderr)
    return 0


def _count(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"
