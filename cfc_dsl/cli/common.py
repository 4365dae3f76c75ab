"""What the subcommands share: `--set`/`--data` parsing with located errors, compiling
and binding from arguments, and the JSON shapes of values.

Building the argument parser imports this module, so it imports no NumPy, model or runtime
at the top (issue 12: a command pays only for what it runs).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cfc_dsl.diagnostics import CfcError, ErrorKind, Source, Span

if TYPE_CHECKING:
    import numpy as np

    from cfc_dsl.model import Model


def command_line_span(text: str, start: int, end: int) -> Span:
    return Span(Source("<command line>", text), 1, start + 1, 1, end + 1)


def parse_settings(raw: list[str]):  # type: ignore[no-untyped-def]
    from cfc_dsl.runtime.bind.tables import Setting

    out = []
    for item in raw:
        text = f"--set {item}"
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise CfcError(ErrorKind.ARGUMENT, f"'--set {item}' is not NAME=VALUE",
                           command_line_span(text, 6, len(text)), "write e.g. --set N=1000")
        try:
            number = float(value)
        except ValueError:
            start = 6 + len(name) + 1
            raise CfcError(ErrorKind.ARGUMENT, f"'{value}' is not a number",
                           command_line_span(text, start, len(text)),
                           f"--set takes numbers, e.g. --set {name}=0.5") from None
        out.append(Setting(name.strip(), number, command_line_span(text, 6, 6 + len(name))))
    return tuple(out)


def parse_data(raw: list[str]):  # type: ignore[no-untyped-def]
    from cfc_dsl.runtime.bind.tables import DataInput

    out = []
    for item in raw:
        text = f"--data {item}"
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise CfcError(ErrorKind.ARGUMENT, f"'--data {item}' is not NAME=PATH",
                           command_line_span(text, 7, len(text)),
                           "write e.g. --data edges=edges.npy")
        out.append(DataInput(name, Path(path), command_line_span(text, 7, 7 + len(name))))
    return tuple(out)


def _thread_count(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def add_threads(p: argparse.ArgumentParser) -> None:
    """--threads and --reorder: how the C kernels run (neither changes a result's meaning)."""
    p.add_argument("--threads", type=_thread_count, default=None, metavar="N",
                   help="threads for the C kernels (default: CFC_THREADS, else the cores other jobs "
                   "leave idle; small problems run on one); results are bit-identical for any N")
    p.add_argument("--reorder", choices=["none", "sort", "rcm"], default=None,
                   help="instance order for locality: sort by first variable (default), rcm "
                   "also renumbers variables (reverse Cuthill-McKee); results keep your indices")


def apply_threads(args: argparse.Namespace) -> None:
    """The CLI owns its process: --threads/--reorder become CFC_THREADS/CFC_REORDER, which
    every bind in this process reads (check's audit included)."""
    if getattr(args, "threads", None) is not None:
        os.environ["CFC_THREADS"] = str(args.threads)
    if getattr(args, "reorder", None) is not None:
        os.environ["CFC_REORDER"] = args.reorder


def compiled_model(model: Model, backend: str):  # type: ignore[no-untyped-def]
    from cfc_dsl.model import Target
    from cfc_dsl.runtime.backends.native import BackendKind
    from cfc_dsl.runtime.problem import compile_model

    compiled = compile_model(model, Target.C, BackendKind(backend))
    if compiled.notice:
        print(f"cfc: note: {compiled.notice}", file=sys.stderr)
    return compiled


def bind_args(args: argparse.Namespace, model: Model, init: str | None = None):  # type: ignore[no-untyped-def]
    from cfc_dsl.runtime.bind.data import load_point

    compiled = compiled_model(model, args.backend)
    point = None
    if init:
        shapes = variable_shapes(compiled, args)
        point = load_point(Path(init), shapes)
    return compiled.bind(settings=parse_settings(args.set), data_inputs=parse_data(args.data),
                         init=point)


def variable_shapes(compiled: Any, args: argparse.Namespace) -> dict[str, tuple[int, ...]]:
    from cfc_dsl.runtime.bind.tables import bind

    bound = bind(compiled.model, parse_settings(args.set), parse_data(args.data))
    return {v.name: v.shape for v in bound.layout}


def nested(values: dict[str, np.ndarray]) -> dict[str, Any]:
    return {k: (float(v) if v.ndim == 0 else v.tolist()) for k, v in values.items()}


def compile_json(compiled: Any) -> dict[str, Any]:
    info = compiled.info
    if info is None:
        return {"cache": "none", "seconds": 0.0, "backend": "python"}
    return {"cache": "hit" if info.cache_hit else "miss", "seconds": round(info.seconds, 6),
            "backend": "c"}


def print_findings(model: Model, strict: bool, args: argparse.Namespace | None = None) -> None:
    """Factor-graph warnings and notes (cfc_dsl.runtime.graph.validate) on stderr, bound at default sizes
    unless --set/--data say otherwise; --strict makes warnings an error (exit 2)."""
    try:
        from cfc_dsl.runtime.graph.validate import report_findings
    except ImportError:
        return
    settings = parse_settings(getattr(args, "set", None) or [])
    data = parse_data(getattr(args, "data", None) or [])
    report_findings(model, strict, settings, data)


def input_files(args: argparse.Namespace, *point_flags: str) -> list[tuple[str, str | None]]:
    """The files a command reads, for check_output: the model, --data files, point files."""
    inputs: list[tuple[str, str | None]] = [("model file", args.model)]
    inputs += [("data file", item.partition("=")[2]) for item in getattr(args, "data", [])]
    inputs += [(f"{flag} file", getattr(args, flag.lstrip("-").replace("-", "_"), None))
               for flag in point_flags]
    return inputs
