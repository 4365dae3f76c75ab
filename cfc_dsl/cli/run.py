"""`cfc run | eval`: bind a model and relax it, or evaluate it at a point.

Each prints a short human summary or (with --json) one JSON object on stdout; messages
about the run itself (fallbacks, progress) go to stderr so stdout stays machine-readable.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from cfc_dsl.cli.common import bind_args, compile_json, input_files, nested
from cfc_dsl.diagnostics import CfcError, ErrorKind, plural
from cfc_dsl.frontend import load_file


# ---------------------------------------------------------------- run / eval
def _progress_printer(quiet: bool):  # type: ignore[no-untyped-def]
    """A progress line on stderr about once a second, only for long runs on a terminal."""
    if quiet or not sys.stderr.isatty():
        return None
    import time

    last = [time.monotonic()]

    def report(step: int, energy: float, pg_norm: float) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0:
            last[0] = now
            print(f"  step {step:>7}  energy {energy:.10g}  |proj grad| {pg_norm:.3g}",
                  file=sys.stderr, flush=True)

    return report


def _check_run_args(args: argparse.Namespace) -> None:
    from cfc_dsl.runtime.outputs import check_output

    if args.max_steps < 0:
        raise CfcError(ErrorKind.ARGUMENT, f"--max-steps must be 0 or more, got {args.max_steps}",
                       None, "for example --max-steps 1000 (0 evaluates the initial state only)")
    if not (math.isfinite(args.tol) and args.tol >= 0):
        raise CfcError(ErrorKind.ARGUMENT, f"--tol must be a finite number >= 0, got {args.tol:g}",
                       None, "for example --tol 1e-8")
    inputs = input_files(args, "--init")
    if args.trace:
        trace = check_output(args.trace, "--trace", inputs, "trace.csv")
        if trace.suffix.lower() not in (".csv", ".parquet"):
            raise CfcError(ErrorKind.ARGUMENT, f"cannot write a trace to '{trace}'", None,
                           "use a .csv or .parquet file name")
    if args.out:
        check_output(args.out, "--out", inputs + [("--trace file", args.trace)])
        if args.trace and Path(args.out).resolve() == Path(args.trace).resolve():
            raise CfcError(ErrorKind.ARGUMENT, "--out and --trace name the same file", None,
                           "give the result and the trace different names")


def cmd_run(args: argparse.Namespace) -> int:
    _check_run_args(args)
    model = load_file(args.model)
    problem = bind_args(args, model, args.init)
    extra = {"lipschitz": True} if getattr(args, "lipschitz_cap", False) else {}
    relaxation = problem.relax(solver=args.solver, max_steps=args.max_steps, tol=args.tol,
                               progress=_progress_printer(args.json), **extra)
    result = relaxation.result
    payload = {
        "model": model.name, "energy": result.energy, "energy_initial": result.energy_initial,
        "families": relaxation.families, "steps": result.steps, "converged": result.converged,
        "reason": result.reason.value, "delta_f90": result.delta_f90,
        "x": nested(relaxation.values), "compile": compile_json(problem.compiled),
        "solver": result.solver,
    }
    if args.json or args.out or result.solver == "certified":
        from cfc_dsl.runtime.lipschitz import lipschitz_report

        payload["lipschitz"] = lipschitz_report(problem, refine=False)  # the L the solver saw
    from cfc_dsl.runtime.outputs import write_output

    if args.trace:
        write_output(Path(args.trace), result.trace.write, "--trace")
    if args.out:
        write_output(Path(args.out), json.dumps(payload, indent=2) + "\n", "--out")
    if args.json:
        print(json.dumps(payload))
        return 0
    comp = payload["compile"]
    print(f"cfc run {model.name}: {plural(problem.bound.n, 'variable')}, "
          f"{plural(sum(t.size for t in problem.bound.families), 'factor')}, "
          f"backend {comp['backend']}"
          + (f" (kernels: cache {comp['cache']}, {comp['seconds']:.2f} s)" if comp["backend"] == "c" else ""))
    print(f"  energy  {result.energy_initial + 0.0:.10g} -> {result.energy + 0.0:.10g} in "
          f"{plural(result.steps, 'step')}")
    print(f"  stopped {result.reason.value}: {result.reason.describe(args.tol)}")
    print(f"  ΔF90    {plural(result.delta_f90, 'step')}")
    if result.solver == "certified":
        L = payload["lipschitz"]["L"]
        print(f"  L       {L:.6g} (Gershgorin), step 1/L = {1 / L if L else math.inf:.6g}")
    width = max((len(n) for n in relaxation.families), default=0)
    for name, value in relaxation.families.items():
        print(f"  {name:<{width}}  {value + 0.0:.10g}")  # + 0.0: no '-0'
    for extra in (args.trace, args.out):
        if extra:
            print(f"  wrote {extra}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    model = load_file(args.model)
    problem = bind_args(args, model, args.at)
    evaluation = problem.evaluate()
    grad = nested(problem.bound.split(evaluation.grad))
    if args.json:
        print(json.dumps({"model": model.name, "energy": evaluation.energy,
                          "families": evaluation.families, "grad": grad}))
        return 0
    print(f"energy {evaluation.energy:.17g}")
    for name, value in evaluation.families.items():
        print(f"  {name}  {value:.17g}")
    for name, value in grad.items():
        print(f"grad {name}: {value}")
    return 0
