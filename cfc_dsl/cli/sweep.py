"""`cfc sweep`: relax a model over a grid of sizes and parameters x seeds, on Dask.

    cfc sweep MODEL --grid a=-1:1:21 --grid N=64,256 --seeds 10 [--set ...] [--data ...]
        [--observe eta:mean] [--solver ...] [--max-steps ...] [--workers K]
        [--scheduler tcp://host:port] [--resume] -o sweep.parquet

Writes one Parquet row per point (with provenance in its metadata) and prints a summary.
Exit codes: 0 every point ran, 1 some point failed (its row holds the error), 2 user error.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from cfc_dsl.diagnostics import CfcError, ErrorKind, plural


def register(subparsers: Any) -> None:
    subparsers.add_parser(
        "sweep", help="relax a model over a grid of settings x seeds, as Dask tasks",
        description="Compile once, then relax every grid point x seed as a task on a Dask "
        "LocalCluster (or an existing scheduler); one Parquet row per point.", fill=_arguments)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model")
    p.add_argument("--grid", action="append", default=[], metavar="NAME=lo:hi:num|v1,v2",
                   help="a swept size, param or weight.FAMILY (repeatable; the product is run)")
    p.add_argument("--seeds", default="1", metavar="K|s1,s2",
                   help="K seeds 0..K-1 (default 1), or a list; {seed} in --data paths")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a fixed size, parameter or weight.FAMILY (repeatable)")
    p.add_argument("--data", action="append", default=[], metavar="NAME=PATH",
                   help="a data array (.npy/.csv); {seed} in PATH is replaced by the seed")
    p.add_argument("--observe", action="append", default=[], metavar="VAR:STAT",
                   help="record a statistic of a relaxed variable, e.g. eta:mean (repeatable)")
    p.add_argument("--solver", default="auto", help="the solver for every point (default auto, as for cfc run)")
    p.add_argument("--max-steps", type=int, default=1000)
    p.add_argument("--tol", type=float, default=1e-8)
    p.add_argument("--backend", choices=["auto", "c", "python"], default="auto")
    p.add_argument("--workers", type=int, default=2, metavar="K",
                   help="local single-threaded worker processes (default 2; 0: run serially "
                   "in this process)")
    p.add_argument("--scheduler", metavar="tcp://host:port",
                   help="run on this existing Dask scheduler instead of a local cluster")
    p.add_argument("--resume", action="store_true",
                   help="keep the finished rows of -o and run only the missing (or failed) points")
    p.add_argument("-o", "--output", required=True, help="the Parquet file to write")
    p.set_defaults(handler=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from cfc_dsl.cli.common import input_files, parse_data, parse_settings
    from cfc_dsl.frontend import load_file
    from cfc_dsl.runtime.outputs import check_output
    from cfc_dsl.runtime.sweep.engine import Sweep, SweepInterrupted, run
    from cfc_dsl.runtime.sweep.grid import Axis, Observation, parse_seeds
    from cfc_dsl.runtime.sweep.task import Relax

    if args.workers < 0 or args.max_steps < 0:
        flag = "--workers" if args.workers < 0 else "--max-steps"
        raise CfcError(ErrorKind.ARGUMENT, f"{flag} must be 0 or more", None,
                       f"for example {flag} 2")
    out = check_output(args.output, "-o", input_files(args), "sweep.parquet")
    if out.suffix.lower() != ".parquet":
        raise CfcError(ErrorKind.ARGUMENT, f"cannot write a sweep to '{out}'", None,
                       "use a .parquet file name, e.g. -o sweep.parquet")
    axes = tuple(Axis.parse(item) for item in args.grid)
    seeds = parse_seeds(args.seeds)
    observe = tuple(Observation.parse(item) for item in args.observe)
    settings = tuple((s.name, s.value) for s in parse_settings(args.set))
    data = tuple((d.name, str(d.value)) for d in parse_data(args.data))
    model = load_file(args.model)
    sweep = Sweep(model, axes, seeds, Relax(args.solver, args.max_steps, args.tol, args.backend),
                  settings, data, observe)
    start = time.perf_counter()
    try:
        df = run(sweep, workers=args.workers, scheduler=args.scheduler, output=out,
                 resume=args.resume, progress=_progress())
    except SweepInterrupted as stop:
        print(f"\ncfc sweep: interrupted; wrote the {plural(len(stop.frame), 'finished row')} "
              f"to {out} (rerun with --resume to finish)", file=sys.stderr)
        return 130
    failed = df.filter(df["error"].is_not_null())
    where = args.scheduler or ("this process" if args.workers == 0 else
                               f"a local cluster of {plural(args.workers, 'worker')}")
    print(f"cfc sweep {model.name}: {plural(len(df), 'row')} ({plural(len(axes), 'axis', 'axes')}"
          f" x {plural(len(seeds), 'seed')}) on {where} in {time.perf_counter() - start:.1f} s")
    print(f"  wrote {out}")
    if len(failed):
        first = failed["error"][0]
        print(f"cfc sweep: {plural(len(failed), 'point')} failed; the first:\n{first}",
              file=sys.stderr)
        return 1
    return 0


def _progress():  # type: ignore[no-untyped-def]
    """A progress line on stderr, only on a terminal."""
    if not sys.stderr.isatty():
        return None

    def report(done: int, total: int, failed: int) -> None:
        tail = f", {failed} failed" if failed else ""
        print(f"\r  {done}/{total} points{tail}", end="" if done < total else "\n",
              file=sys.stderr, flush=True)

    return report


