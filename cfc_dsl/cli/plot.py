"""`cfc plot`: draw relaxation traces or a sweep table as PNG, PDF or SVG with matplotlib.

    cfc plot trace.csv -o trace.png                      # energy gap, families, ‖∇F‖, step
    cfc plot pgd.csv certified.csv -o compare.pdf        # solvers side by side
    cfc plot sweep.parquet -o sweep.svg --x N --y energy --hue solver

The drawing lives in `runtime/observe/plots.py`, imported only when this command runs, so
no other command loads matplotlib.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cfc_dsl.diagnostics import CfcError, ErrorKind


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    subparsers.add_parser("plot", help="draw traces or a sweep table (png, pdf, svg)",
        fill=_arguments)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("tables", nargs="+", metavar="TRACE",
                   help="a trace from 'cfc run --trace' (.csv or .parquet); several are drawn "
                   "side by side, one colour each")
    p.add_argument("-o", "--out", required=True, metavar="PATH",
                   help="output file; its extension picks the format: .png .pdf .svg")
    p.add_argument("--x", metavar="COL", help="draw a sweep table: this column on the x axis")
    p.add_argument("--y", metavar="COL", help="sweep table: the y column (default energy)")
    p.add_argument("--hue", metavar="COL", help="sweep table: one line per value of this "
                   "column; rows sharing x and hue (seeds) give the mean and min-max band")
    p.add_argument("--width", choices=["single", "double"], default="single",
                   help="single (default): one paper column, 3.3 in; double: 7 in")
    p.set_defaults(handler=cmd_plot)


def cmd_plot(args: argparse.Namespace) -> int:
    from cfc_dsl.runtime.outputs import check_output, write_output

    out = check_output(args.out, "-o", [("trace file", t) for t in args.tables], "trace.png")
    if (args.y or args.hue) and not args.x:
        raise CfcError(ErrorKind.ARGUMENT, "--y and --hue draw a sweep table and need --x",
                       None, "name the swept column, e.g. --x N --y energy")
    try:
        from cfc_dsl.runtime.observe import plots
    except ImportError as exc:
        raise CfcError(ErrorKind.ENVIRONMENT, f"cfc plot needs matplotlib ({exc})", None,
                       "install it: pip install matplotlib") from None
    fmt = plots.figure_format(out)
    tables = [plots.read_table(Path(t)) for t in args.tables]
    width = plots.Width[args.width.upper()]
    if args.x:
        figure = plots.sweep_figure(tables, args.x, args.y or "energy", args.hue, width)
        what = f"{args.y or 'energy'} against {args.x}"
    else:
        figure = plots.trace_figure(tables, width)
        what = plots.describe(tables)
    write_output(out, lambda path: plots.save_figure(figure, path, fmt), "-o")
    print(f"wrote {out} ({what})")
    return 0
