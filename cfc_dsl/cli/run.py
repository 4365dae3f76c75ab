"""`cfc run | eval`: bind a model and relax it, or evaluate it at a point.

Each prints a short human summary or (with --json) one JSON object on stdout; messages
about the run itself (fallbacks, progress) go to stderr so stdout stays machine-readable.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

from cfc_dsl.cli import process
from cfc_dsl.cli.common import bind_args, compile_json, input_files, nested
from cfc_dsl.cli.observe import check_show, observer, schema, shown, stages, write_result
from cfc_dsl.cli.solvers import solver_options
from cfc_dsl.diagnostics import CfcError, ErrorKind, plural


# ---------------------------------------------------------------- run / eval
def _check_run_args(args: argparse.Namespace) -> None:
    from cfc_dsl.runtime.outputs import check_output

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
    if getattr(args, "plot", None):
        if any(given and _same(Path(args.plot), given) for given in (args.trace, args.out)):
            raise CfcError(ErrorKind.ARGUMENT, f"--plot '{args.plot}' names the same file "
                           "as --trace or --out", None, "give the figure its own name")
        plot = check_output(args.plot, "--plot", inputs, "trace.png")
        _plots().figure_format(plot)  # .png, .pdf or .svg, before anything runs


def _same(a: Path, b: str) -> bool:
    return a.resolve() == Path(b).resolve()


def _plots():  # type: ignore[no-untyped-def]
    """runtime/observe/plots.py, imported only for --plot (a plain run loads no matplotlib)."""
    try:
        from cfc_dsl.runtime.observe import plots
    except ImportError as exc:
        raise CfcError(ErrorKind.ENVIRONMENT, f"--plot needs matplotlib ({exc})", None,
                       "install it: pip install matplotlib") from None
    return plots


def _write_plot(path: Path, label: str, trace: object) -> None:
    """--plot: the run's own trace drawn as `cfc plot` draws a trace file."""
    from cfc_dsl.runtime.observe.panels import Table
    from cfc_dsl.runtime.outputs import write_output

    plots = _plots()
    figure = plots.trace_figure([Table(label, str(path), trace.frame())])  # type: ignore[attr-defined]
    fmt = plots.figure_format(path)
    write_output(path, lambda target: plots.save_figure(figure, target, fmt), "--plot")


def add_coordinate_arguments(p: argparse.ArgumentParser) -> None:
    """--homotopy and --adapter (runtime/coordinate/): weights moved between solver rounds."""
    from cfc_dsl.runtime.coordinate import adapter_names

    p.add_argument("--homotopy", action="append", default=[],
                   metavar="FAMILY=START:STAGES[:geometric]", help="ramp a family's weight "
                   "from START to its value over STAGES stages (repeatable; 'none' ignores the "
                   "model's schedules)")
    p.add_argument("--adapter", choices=adapter_names(), help="a term-weight adapter")
    p.add_argument("--adapter-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="an adapter option (repeatable)")


def _coordinate(args: argparse.Namespace) -> tuple[object, object]:
    """(homotopy schedules or None, adapter options), checked before anything is bound."""
    from cfc_dsl.cli.common import command_line_span

    homotopy = None
    if args.homotopy:  # homotopy.py and adapters.py only when asked for (start-up)
        from cfc_dsl.runtime.coordinate import Schedule

        homotopy = [] if args.homotopy == ["none"] else [
            Schedule.parse(h, command_line_span(f"--homotopy {h}", 11, 11 + len(h)))
            for h in args.homotopy]
    values, spans = {}, {}
    for item in getattr(args, "adapter_opt", []):
        text = f"--adapter-opt {item}"
        key, sep, value = item.partition("=")
        span = command_line_span(text, 14, len(text))
        if not sep or not key.strip() or not args.adapter:
            raise CfcError(ErrorKind.ARGUMENT, f"'{text}' needs KEY=VALUE and an --adapter",
                           span, "write e.g. --adapter gradnorm --adapter-opt rounds=5")
        values[key.strip()] = value
        spans[key.strip()] = (span, span)
    if not args.adapter:
        return homotopy, None
    from cfc_dsl.runtime.coordinate.adapters import parse_options

    return homotopy, parse_options(args.adapter, values, spans)


def cmd_run(args: argparse.Namespace) -> int:
    options = solver_options(args)  # checked before anything is compiled or bound
    homotopy, adapter_options = _coordinate(args)
    _check_run_args(args)
    st = stages(args, ("load", "bind", "relax", "write"), bar=False)
    with st("load"):
        from cfc_dsl.frontend import load_file

        model = load_file(args.model, cached=True)
    with st("bind"):
        problem = bind_args(args, model, args.init)
        check_show(args, problem)  # a bad --show is refused before the relaxation
        observe = observer(args, problem, options.max_steps)
    process.resume(freeze=_nothing_built(problem))
    with st("relax"):
        relaxation = problem.relax(solver=args.solver, options=options, progress=observe,
                                   homotopy=homotopy, adapter=args.adapter,
                                   adapter_options=adapter_options)
    result = relaxation.result
    payload = {
        **schema("run"),
        "model": model.name, "energy": result.energy, "energy_initial": result.energy_initial,
        "families": relaxation.families, "steps": result.steps, "converged": result.converged,
        "reason": result.reason.value, "delta_f90": result.delta_f90,
        "second_order": relaxation.second_order,
        "x": nested(relaxation.values), "compile": compile_json(problem.compiled),
        "solver": result.solver,
        "solver_options": dataclasses.asdict(result.options or options),
        "energy_fixed": relaxation.energy_fixed,  # under the user's weights
    }
    if relaxation.homotopy is not None:
        payload["homotopy"] = relaxation.homotopy
    if relaxation.adapter is not None:
        payload["adapter"] = relaxation.adapter
    if getattr(relaxation.coordination, "kind", None) == "expansion":  # the decision log
        payload["expansion"] = relaxation.coordination.to_json()
    if args.json or args.out:  # gate metrics cost one more (counterfactual) relaxation
        from cfc_dsl.runtime.coordinate.gates import gate_metrics

        metrics = gate_metrics(relaxation)
        if metrics is not None:
            payload["gates"] = metrics.to_json()
    if result.auto is not None:  # the default solver chose: say which and why
        payload["auto"] = result.auto
    if args.json or args.out or relaxation.lipschitz is not None:
        from cfc_dsl.runtime.lipschitz import lipschitz_report

        payload["lipschitz"] = lipschitz_report(problem, refine=False)  # the L the solver saw
    from cfc_dsl.runtime.observe.provenance import provenance
    from cfc_dsl.runtime.observe.summary import summary_json
    from cfc_dsl.runtime.outputs import write_output

    payload["provenance"] = provenance(problem, result.solver, result.options or options,
                                       getattr(result.options or options, "seed", None))
    payload["summary"] = summary_json(relaxation.problem, result.x, relaxation.families,
                                      residuals=args.verbose)  # needs SymPy: on request
    with st("write"):
        if args.trace:
            result.trace.provenance = payload["provenance"]
            write_output(Path(args.trace), result.trace.write, "--trace")
        if getattr(args, "plot", None):
            _write_plot(Path(args.plot), model.name, result.trace)
        if args.out:
            write_result(Path(args.out), payload, relaxation.values)
    if args.quiet:
        return 0
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
    print(f"  stopped {result.reason.value}: {result.reason.describe(options.tol)}")
    expansion = payload.get("expansion")
    if expansion is not None:
        verdicts = [d["verdict"] for d in expansion["decisions"]]
        print(f"  expansion {verdicts.count('admitted')} admitted, "
              f"{verdicts.count('rejected')} rejected (dF < -tau - gamma * n; see --json)")
    elif relaxation.coordination is not None:  # the weights moved: the user's objective too
        rounds = len(relaxation.coordination.rounds)
        print(f"  {relaxation.coordination.name}: {plural(rounds, 'round')}, energy under "
              f"the user's weights {relaxation.energy_fixed + 0.0:.10g}")
    if result.auto is not None:
        print(f"  solver  {result.solver} (auto: {result.auto})")
    from cfc_dsl.runtime.observe.summary import summary_lines

    print(f"  ΔF90    {plural(result.delta_f90, 'step')}")
    check = result.second_order
    if check is not None:
        print(f"  curvature {check.min_curvature:.6g} (smallest found, "
              f"{plural(check.lanczos_steps, 'Lanczos step')}): {'a local minimum' if check.passed else 'NOT a local minimum'}")
    if relaxation.lipschitz is not None:  # the solver declared it needs L
        L = relaxation.lipschitz
        print(f"  L       {L:.6g} (Gershgorin), step 1/L = {1 / L if L else math.inf:.6g}")
    width = max((len(n) for n in relaxation.families), default=0)
    for name, value in relaxation.families.items():
        print(f"  {name:<{width}}  {value + 0.0:.10g}")  # + 0.0: no '-0'
    for line in summary_lines(payload["summary"], shown(args, problem, result.x)):
        print(line)
    for extra in (args.trace, args.out, getattr(args, "plot", None)):
        if extra:
            print(f"  wrote {extra}")
    return 0


def _nothing_built(problem: object) -> bool:
    """The kernels came from the cache (or the Python backend needs none): start-up left no
    compiler garbage, so `process.resume` may freeze what it built."""
    info = problem.compiled.info  # type: ignore[attr-defined]
    return info is None or bool(info.cache_hit)


def cmd_eval(args: argparse.Namespace) -> int:
    from cfc_dsl.frontend import load_file

    model = load_file(args.model, cached=True)
    problem = bind_args(args, model, args.at)
    process.resume(freeze=_nothing_built(problem))
    evaluation = problem.evaluate()
    grad = nested(problem.bound.split(evaluation.grad))
    if args.json:
        print(json.dumps({**schema("eval"), "model": model.name, "energy": evaluation.energy,
                          "families": evaluation.families, "grad": grad}))
        return 0
    print(f"energy {evaluation.energy:.17g}")
    for name, value in evaluation.families.items():
        print(f"  {name}  {value:.17g}")
    for name, value in grad.items():
        print(f"grad {name}: {value}")
    return 0
