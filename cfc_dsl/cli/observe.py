"""What `cfc run` and `cfc compile` add to say what they did: --quiet, --verbose (each
stage with its time), a progress bar on a terminal, --trace-vars and --show, the post-run
summary (bounds, largest instances, dominant families), the provenance block and the
`schema` key of every JSON shape (docs/json.md), and `--out result.npz`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cfc_dsl.cli.common import command_line_span

SCHEMAS = {"run": "cfc.run/1", "eval": "cfc.eval/1", "compile": "cfc.compile/1",
           "solvers": "cfc.solvers/1"}


def add_verbosity(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--quiet", "-q", action="store_true",
                       help="print nothing on success (errors still go to stderr)")
    group.add_argument("--verbose", "-v", action="store_true",
                       help="log each stage with its time on stderr")


def add_run_observe(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trace-vars", metavar="VARS", help="trace columns for these variables' "
                   "elements, e.g. eta,gate or eta[0:100] (needed above 1,000 elements)")
    p.add_argument("--trace-rejected", action="store_true", help="trace rows (accepted "
                   "false) for the trial steps a solver turns down")
    p.add_argument("--show", metavar="VARS", help="print these values in the summary, "
                   "e.g. eta[18:23],gate (flat indices, end excluded)")
    add_verbosity(p)


def schema(kind: str) -> dict[str, str]:
    return {"schema": SCHEMAS[kind]}


def stages(args: argparse.Namespace, names: tuple[str, ...],  # type: ignore[no-untyped-def]
           bar: bool = True):
    """Timed stages; `bar=False` where a relaxation's own bar shows the progress."""
    from cfc_dsl.runtime.observe.progress import Stages

    return Stages(names, verbose=getattr(args, "verbose", False),
                  quiet=getattr(args, "quiet", False), machine=getattr(args, "json", False),
                  bar=bar)


def observer(args: argparse.Namespace, problem: Any, max_steps: int):  # type: ignore[no-untyped-def]
    """The `Observe` for a CLI run: the bar (terminal only), the variable statistics, the
    traced elements and, when a trace is written, per-family gradient norms."""
    from cfc_dsl.runtime.observe.progress import progress_bar
    from cfc_dsl.runtime.observe.records import Observe, parse_trace_vars, variable_spans

    layout = problem.bound.layout
    traced = ()
    if args.trace_vars:
        text = f"--trace-vars {args.trace_vars}"
        traced = parse_trace_vars(args.trace_vars, layout,
                                  command_line_span(text, 13, len(text)))
    bar = progress_bar(max_steps, quiet=args.quiet, machine=args.json)
    return Observe(trackers=() if bar is None else (bar,), variables=variable_spans(layout),
                   trace_vars=traced, family_grads=bool(args.trace),
                   rejected=bool(args.trace and args.trace_rejected))


def shown(args: argparse.Namespace, problem: Any, x: Any) -> list[tuple[str, list[float]]]:
    from cfc_dsl.runtime.observe.summary import show_values

    if not args.show:
        return []
    text = f"--show {args.show}"
    return show_values(args.show, problem.bound.layout, x, command_line_span(text, 7, len(text)))


def check_show(args: argparse.Namespace, problem: Any) -> None:
    """Refuse a bad --show before the relaxation runs."""
    shown(args, problem, problem.bound.x0)


def write_result(path: Path, payload: dict[str, Any], values: dict[str, Any]) -> None:
    """`--out`: JSON (readable by eval --at and run --init), or .npz with one array per
    variable and the rest of the payload, provenance included, as a JSON string `result`."""
    from cfc_dsl.runtime.outputs import write_output

    if path.suffix.lower() != ".npz":
        write_output(path, json.dumps(payload, indent=2) + "\n", "--out")
        return
    import io

    import numpy as np

    rest = {k: v for k, v in payload.items() if k != "x"}
    buffer = io.BytesIO()
    np.savez(buffer, **{f"x.{k}": np.asarray(v) for k, v in values.items()},
             result=np.array(json.dumps(rest, sort_keys=True)))
    write_output(path, buffer.getvalue(), "--out")
