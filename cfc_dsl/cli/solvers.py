"""`cfc solvers`, and the solver arguments of `cfc run`: `--solver NAME`, `--solver-opt
KEY=VALUE` (repeatable) and the shorthands `--max-steps`, `--tol`, `--lipschitz-cap`, all
checked against the solver's options dataclass in the registry, with a caret under the
offending text on the command line.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from cfc_dsl.cli.common import command_line_span
from cfc_dsl.diagnostics import CfcError, ErrorKind, Span


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    subparsers.add_parser("solvers", help="list the solvers, their needs and options",
                          fill=_arguments)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_solvers)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The solver flags of `cfc run` (choices from the registry)."""
    from cfc_dsl.runtime.solvers.registry import solver_names

    names = solver_names()
    p.add_argument("--solver", default=names[0], choices=names,
                   help=f"default {names[0]}; 'cfc solvers' describes each")
    p.add_argument("--solver-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="a solver option (repeatable); 'cfc solvers' lists them")
    p.add_argument("--lipschitz-cap", action="store_true",
                   help="shorthand for --solver-opt lipschitz_cap=true (pgd: cap steps at 2/L "
                   "and trace the contraction margin 2/L - t)")
    p.add_argument("--max-steps", metavar="N", help="shorthand for --solver-opt max_steps=N")
    p.add_argument("--tol", metavar="X", help="shorthand for --solver-opt tol=X")


Spans = dict[str, tuple[Span | None, Span | None]]


def _flag(values: dict[str, str], spans: Spans, flag: str, key: str, value: str) -> None:
    text = f"{flag} {value}"
    values[key] = value
    spans[key] = (command_line_span(text, 0, len(flag)),
                  command_line_span(text, len(flag) + 1, len(text)))


def solver_options(args: argparse.Namespace) -> Any:
    """The options dataclass for `args.solver` from the flags; later flags win, and
    `--solver-opt` comes after the shorthands."""
    from cfc_dsl.runtime.solvers.registry import parse_options

    values: dict[str, str] = {}
    spans: Spans = {}
    if args.max_steps is not None:
        _flag(values, spans, "--max-steps", "max_steps", args.max_steps)
    if args.tol is not None:
        _flag(values, spans, "--tol", "tol", args.tol)
    if args.lipschitz_cap:
        text = "--lipschitz-cap"
        values["lipschitz_cap"] = "true"
        spans["lipschitz_cap"] = (command_line_span(text, 0, len(text)),) * 2
    for item in args.solver_opt:
        text = f"--solver-opt {item}"
        key, sep, value = item.partition("=")
        start = len("--solver-opt ")
        if not sep or not key.strip():
            raise CfcError(ErrorKind.ARGUMENT, f"'{text}' is not KEY=VALUE",
                           command_line_span(text, start, len(text)),
                           "write e.g. --solver-opt max_steps=500; 'cfc solvers' lists the keys")
        key = key.strip()
        values[key] = value
        spans[key] = (command_line_span(text, start, start + len(item.partition("=")[0])),
                      command_line_span(text, start + len(item.partition("=")[0]) + 1,
                                        max(len(text), start + len(key) + 2)))
    return parse_options(args.solver, values, spans)


def cmd_solvers(args: argparse.Namespace) -> int:
    from cfc_dsl.runtime.solvers.registry import solver_infos

    infos = solver_infos()
    if args.json:
        from cfc_dsl.cli.observe import schema

        print(json.dumps({**schema("solvers"), "solvers": [i.to_json() for i in infos]}))
        return 0
    for info in infos:
        print(f"{info.name}: {info.description}")
        print(f"  needs    {', '.join(info.needs) or 'nothing from the problem'}")
        width = max(len(f"{o.name}: {o.type} = {o.default!r}") for o in info.options)
        for k, o in enumerate(info.options):
            head = f"{o.name}: {o.type} = {o.default!r}"
            print(f"  {'options' if k == 0 else '':<8} {head:<{width}}  {o.help}")
        print()
    print("use: cfc run MODEL --solver NAME --solver-opt KEY=VALUE")
    return 0
