"""The `cfc` command line: argument parsing, dispatch and the error boundary.

Each subcommand lives in its own module (`compile.py`, `run.py`, `audit.py`, `graph.py`,
`solvers.py`). This module turns every `CfcError` into a
rendered message and its exit code (2 user error, 3 environment), and any other exception
into a short internal-error message; `CFC_DEBUG=1` shows the Python traceback too.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from cfc_dsl.cli import process
from cfc_dsl.diagnostics import CfcError
from cfc_dsl.version import __version__


class _Parser(argparse.ArgumentParser):
    """Ours: a located usage error, and (`fill`) arguments added on first use, so a command
    pays only for its own arguments, and `run`'s choices that come from the runtime (the
    solvers, the adapters) cost those imports only when it runs or shows its help (issue 12)."""

    def __init__(self, *args: Any, fill: Callable[[argparse.ArgumentParser], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fill = fill

    def _filled(self) -> None:
        fill, self._fill = self._fill, None
        if fill is not None:
            fill(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._filled()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._filled()
        return super().format_usage()

    def format_help(self) -> str:
        self._filled()
        return super().format_help()

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"cfc: error: {message}\nhint: run '{self.prog} --help' for the options",
              file=sys.stderr)
        raise SystemExit(2)


def _common_bind(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="set a size, parameter or weight.FAMILY (repeatable)")
    p.add_argument("--data", action="append", default=[], metavar="NAME=PATH",
                   help="a data array from a .npy or .csv file (repeatable)")


def _backend(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["auto", "c", "python", "cuda"], default="auto",
                   help="c: compiled kernels; python: NumPy reference; cuda: nvcc-built kernels "
                   "on an NVIDIA GPU; auto (default): c if a C compiler exists, else python")
    from cfc_dsl.cli.common import add_threads

    add_threads(p)  # --threads, --reorder


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cfc", description="Compile and relax energy-based factor graphs.")
    parser.add_argument("--version", action="version", version=f"cfc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("compile", help="parse, check, derive, generate and compile the kernels",
                   fill=_compile_arguments)
    sub.add_parser("run", help="bind the model and relax it to low energy", fill=_run_arguments)
    sub.add_parser("eval", help="energy, per-family energy and gradient at a point",
                   fill=_eval_arguments)
    sub.add_parser("dump", help="print one pipeline stage", fill=_dump_arguments)
    sub.add_parser("cache", help="manage the kernel cache", fill=_cache_arguments)
    for extension in _extensions():
        extension(sub)
    return parser


# Each subcommand's arguments, added when that subcommand is parsed or its help is shown:
# argparse spends ~0.2 ms per argument (a help formatter each), ~20 ms for all commands.
def _compile_arguments(p: argparse.ArgumentParser) -> None:
    from cfc_dsl.cli.observe import add_verbosity

    p.add_argument("model")
    p.add_argument("--target", choices=["c", "cuda"], default="c")
    p.add_argument("--out-dir", help="also write the generated files here")
    p.add_argument("--emit", default=None, help="files for --out-dir: any of c,h,ir,sympy "
                   "(default c,h)")
    p.add_argument("--strict", action="store_true", help="treat graph warnings as errors")
    _common_bind(p)  # only for the graph checks: kernels never depend on sizes or data
    p.add_argument("--force", action="store_true", help="overwrite files in --out-dir")
    p.add_argument("--json", action="store_true")
    add_verbosity(p)


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model")
    p.add_argument("--at", required=True, help="JSON point file")
    _common_bind(p)
    _backend(p)
    p.add_argument("--json", action="store_true")


def _dump_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model")
    p.add_argument("--stage", required=True,
                   choices=["ast", "model", "sympy", "ir", "c", "h", "cdef", "cuda"])


def _cache_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["list", "clear", "dir"])
    p.add_argument("--json", action="store_true")


def _run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model")
    _common_bind(p)
    p.add_argument("--init", help="initial point: JSON {var: number | nested list}")
    from cfc_dsl.cli.solvers import add_run_arguments

    add_run_arguments(p)  # --solver (from the registry), --solver-opt and the shorthands
    from cfc_dsl.cli.run import add_coordinate_arguments

    add_coordinate_arguments(p)  # --homotopy, --adapter, --adapter-opt
    _backend(p)
    p.add_argument("--trace", help="write the trace (.csv or .parquet)")
    p.add_argument("--plot", metavar="PATH", help="draw the trace as in 'cfc plot' "
                   "(.png, .pdf or .svg; needs matplotlib)")
    p.add_argument("--out", help="write the result as JSON (readable by eval --at and "
                   "run --init), or .npz for large arrays")
    p.add_argument("--json", action="store_true")
    from cfc_dsl.cli.observe import add_run_observe

    add_run_observe(p)  # --trace-vars, --show, --quiet, --verbose


def _extensions():  # type: ignore[no-untyped-def]
    """Subcommands that live with their feature (check, graph, solvers, sweep, plot)."""
    from cfc_dsl.cli import audit, graph, plot, solvers, sweep

    return [audit.register, graph.register, solvers.register, sweep.register, plot.register]


def _handler(command: str):  # type: ignore[no-untyped-def]
    """The command's function; only its module is imported (`run` loads no compile code)."""
    if command in ("run", "eval"):
        from cfc_dsl.cli import run

        return {"run": run.cmd_run, "eval": run.cmd_eval}[command]
    from cfc_dsl.cli import compile

    return {"compile": compile.cmd_compile, "dump": compile.cmd_dump,
            "cache": compile.cmd_cache}[command]


def main(argv: Sequence[str] | None = None) -> int:
    """`cfc` with `argv` (default: the process's own, when main() is the program)."""
    args = build_parser().parse_args(argv)
    program = argv is None  # the `cfc` script or `python -m`: this process is ours
    if program and args.command in ("run", "eval"):
        process.pause()  # no collections while they start (process.py)
    try:
        return _dispatch(args)
    finally:
        if program:
            process.finish()


def _dispatch(args: argparse.Namespace) -> int:
    try:
        from cfc_dsl.cli.common import apply_threads

        apply_threads(args)
        handler = getattr(args, "handler", None) or _handler(args.command)
        return int(handler(args) or 0)
    except CfcError as err:
        print(err.render(), file=sys.stderr)
        _debug_traceback()
        return err.exit_code
    except KeyboardInterrupt:
        print("cfc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the boundary: no traceback reaches a user by default
        print(f"cfc: internal error: {type(exc).__name__}: {exc}\n"
              "hint: this is a bug in cfc; rerun with CFC_DEBUG=1 and report the traceback",
              file=sys.stderr)
        _debug_traceback()
        return 3


def _debug_traceback() -> None:
    """CFC_DEBUG=1: the traceback as well (imported here: `traceback` costs every run ~2 ms)."""
    if os.environ.get("CFC_DEBUG"):
        import traceback

        traceback.print_exc()


if __name__ == "__main__":
    raise SystemExit(main())
