"""`cfc check`: the audited gradient check, its report and its certificate.

    cfc check MODEL [--samples N] [--seed S] [--set ...] [--data ...] [--certificate PATH] [--json]
    cfc check [MODEL] --verify CERT [--json]

Exit codes: 0 every family passes (or the certificate verifies), 1 a check fails (or the
certificate does not match this source and build), 2 user error, 3 environment error.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import math
import sys
from pathlib import Path
from typing import Any

from cfc_dsl.diagnostics import CfcError, ErrorKind

SHOWN_DIFFERENCES = 25
_LABELS = {"exact": "exact (mpmath)", "complex_step": "complex step",
           "finite_difference": "finite difference", "energy": "energy"}


def register(subparsers: Any) -> None:
    subparsers.add_parser(
        "check", help="audit the compiled gradients against exact derivatives; certificates",
        description="Check every factor family's compiled gradient against the exact SymPy "
        "gradient (mpmath), complex-step and finite differences, at box corners, faces, kinks "
        "and random interior points. Exit 0: all pass; 1: a check failed.", fill=_arguments)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="the .cfc file (with --verify: defaults to the "
                   "path recorded in the certificate)")
    p.add_argument("--samples", type=int, default=None, metavar="N",
                   help="at least N points per family (default 200)")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="random seed (default 0)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="set a size, parameter or weight.FAMILY (repeatable)")
    p.add_argument("--data", action="append", default=[], metavar="NAME=PATH",
                   help="a data array from a .npy or .csv file (repeatable)")
    from cfc_dsl.cli.common import add_threads

    add_threads(p)  # --threads, --reorder: the compiled side of the audit
    p.add_argument("--certificate", metavar="PATH", help="write the certificate (JSON) here")
    p.add_argument("--verify", metavar="CERT",
                   help="re-run the audit recorded in CERT and confirm it matches this source "
                   "and build")
    p.add_argument("--strict", action="store_true", help="treat graph warnings as errors")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    if args.verify:
        return _verify(args)
    if not args.model:
        raise CfcError(ErrorKind.ARGUMENT, "cfc check needs a model file", None,
                       "write e.g. cfc check model.cfc, or cfc check --verify cert.json")
    from cfc_dsl.cli.common import parse_data, parse_settings
    from cfc_dsl.frontend import load_file
    from cfc_dsl.runtime.audit.certificate import run_check, write
    from cfc_dsl.runtime.audit.gradients import AuditOptions

    if args.seed is not None and not 0 <= args.seed < 2 ** 32:
        raise CfcError(ErrorKind.ARGUMENT, f"--seed must be between 0 and 2^32 - 1, got "
                       f"{args.seed}", None, "for example --seed 0")
    if args.certificate is not None:
        from cfc_dsl.runtime.outputs import check_output

        check_output(args.certificate, "--certificate", [("model file", args.model)] + [
            ("data file", item.partition("=")[2]) for item in args.data], "cert.json")
    options = AuditOptions(samples=_positive(args.samples, "--samples", 200),
                           seed=0 if args.seed is None else args.seed)
    settings, data = parse_settings(args.set), parse_data(args.data)
    model = load_file(args.model)
    _findings(model, args.strict, settings, data)
    run = run_check(args.model, settings, data, options, model=model)
    cert = run.certificate
    digest = write(cert, Path(args.certificate)) if args.certificate else None
    if args.json:
        print(json.dumps(cert, sort_keys=True, indent=2))
    else:
        print(render_report(cert, cache_hit=run.kernels.info.cache_hit))
        if digest:
            print(f"wrote certificate {args.certificate} (sha256 {digest})")
    for line in failure_lines(cert):
        print(line, file=sys.stderr)
    return 0 if cert["audit"]["passed"] else 1


def _positive(value: int | None, flag: str, default: int) -> int:
    if value is None:
        return default
    if value < 1:
        raise CfcError(ErrorKind.ARGUMENT, f"{flag} must be at least 1, got {value}", None,
                       f"for example {flag} 200")
    return value


def _findings(model: Any, strict: bool, settings: Any, data: Any) -> None:
    """Graph findings from cfc_dsl.runtime.graph.validate, when that module exists (to stderr)."""
    try:
        from cfc_dsl.runtime.graph.validate import report_findings
    except ImportError:
        return
    params = inspect.signature(report_findings).parameters
    kwargs: dict[str, Any] = {}
    if "settings" in params:
        kwargs["settings"] = settings
    if "data" in params:
        kwargs["data"] = data
    with contextlib.redirect_stdout(sys.stderr):
        report_findings(model, strict, **kwargs)


def _verify(args: argparse.Namespace) -> int:
    from cfc_dsl.runtime.audit.certificate import sha256_file, verify

    given = [flag for flag, value in (("--samples", args.samples), ("--seed", args.seed),
                                      ("--set", args.set), ("--data", args.data),
                                      ("--certificate", args.certificate)) if value]
    if given:
        raise CfcError(ErrorKind.ARGUMENT, f"{given[0]} cannot be combined with --verify", None,
                       "--verify re-runs the audit with the settings recorded in the certificate")
    result = verify(Path(args.verify), args.model)
    digest = sha256_file(Path(args.verify))
    if args.json:
        print(json.dumps({"verified": result.ok, "certificate": str(args.verify),
                          "certificate_sha256": digest,
                          "differences": [{"path": d.path, "certified": d.recorded,
                                           "current": d.current} for d in result.differences],
                          "audit_passed": bool(result.run and result.run.report.passed),
                          "error": result.error}, sort_keys=True, indent=2))
    else:
        cert = result.recorded
        if result.ok:
            print(f"verified {args.verify} (sha256 {digest}): model {cert.get('model')}, "
                  f"source {cert['source']['sha256'][:16]}, C {cert['build']['c_sha256'][:16]}, "
                  f"module {cert['build']['module_sha256'][:16]}; the audit re-ran and "
                  "reproduced every recorded value")
        else:
            print(f"certificate {args.verify} does NOT match this source and build:")
            for d in result.differences[:SHOWN_DIFFERENCES]:
                print(f"  {d.describe()}")
            more = len(result.differences) - SHOWN_DIFFERENCES
            if more > 0:
                print(f"  ... and {more} more difference{'s' if more > 1 else ''}")
            if result.run is None:
                print("  the changed source no longer loads:")
                print("\n".join(f"    {line}" for line in result.error.splitlines()))
            elif not result.run.report.passed:
                print("  the re-run audit fails:")
                for line in failure_lines(result.run.certificate):
                    print(f"  {line}")
    if not result.ok:
        first = result.differences[0].describe() if result.differences else "the audit fails"
        print(f"cfc check: verification failed: {first}", file=sys.stderr)
    return 0 if result.ok else 1


# ---------------------------------------------------------------- the readable report
def _num(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v is None:
        return "-"
    return f"{v:.3g}" if v != 0 else "0"


def _point(worst: dict[str, Any]) -> str:
    xs = ", ".join(f"{k} = {v!r}" for k, v in worst["x"].items())
    vs = ", ".join(f"{k} is {v}" for k, v in worst["variables"].items())
    ps = ", ".join(f"{k} = {v!r}" for k, v in worst["params"].items())
    text = f"{worst['kind']} point {xs} ({worst['factor']}, instance {worst['instance']}; {vs}"
    return text + (f"; {ps})" if ps else ")")


def _quantity(worst: dict[str, Any]) -> str:
    return f"dE/d{worst['slot']}" if worst.get("slot") else "E"


def render_report(cert: dict[str, Any], cache_hit: bool | None = None) -> str:
    audit = cert["audit"]
    build = cert["build"]
    lines = [f"cfc check {cert['model']}: kernels {build['cache_key'][:12]}"
             + (f" (cache {'hit' if cache_hit else 'miss'})" if cache_hit is not None else "")
             + f", seed {audit['seed']}, at least {audit['samples']} points per family"]
    if not build.get("c_matches_render", True):
        lines.append("warning: the cached C differs from what this cfc renders for the model; "
                     "'cfc cache clear' rebuilds it")
    for name, fam in cert["families"].items():
        pts = fam["points"]
        kinds = ", ".join(f"{pts[k]} {k.replace('_', ' ')}" for k in
                          ("corner", "face", "kink", "kink_side", "interior"))
        lines.append("")
        inst = fam["instances"]
        lines.append(f"family {name} ({fam['energy']}, {inst} instance{'s' if inst != 1 else ''})"
                     f": {pts['total']} points ({kinds})")
        if fam.get("note"):
            lines.append(f"  {fam['note']}")
        header = (f"  {'reference':<18} {'checks':>6} {'skipped':>7} {'max abs err':>11} "
                  f"{'max rel err':>11}  {'tolerance (rel)':<17} result")
        lines.append(header)
        for ref, t in fam["checks"].items():
            tol = _num(t["max_tolerance"])
            tol = f"{tol}" if ref in ("exact", "complex_step", "energy") else f"<= {tol}"
            lines.append(f"  {_LABELS.get(ref, ref):<18} {t['checks']:>6} {t['skipped']:>7} "
                         f"{_num(t['max_abs_error']):>11} {_num(t['max_rel_error']):>11}  "
                         f"{tol:<17} {'pass' if t['passed'] else 'FAIL'}")
        worst = fam.get("worst")
        if worst:
            lines.append(f"  worst ({_LABELS.get(worst['check'], worst['check'])}): "
                         f"{_quantity(worst)} kernel {worst['kernel']!r}, reference "
                         f"{worst['reference']!r}, at {_point(worst)}")
        lip = fam.get("lipschitz") or {}
        if lip.get("status") == "ok":
            verdict = "Lipschitz" if lip["lipschitz"] else f"not Lipschitz: {lip['reason']}"
            lines.append(f"  gradient bound: L <= {_num(lip['value'])} on the box ({verdict})")
        lines.append(f"  result: {'pass' if fam['passed'] else 'FAIL'}")
    lines.append("")
    lines.extend(_global_lines(cert.get("global_lipschitz") or {}))
    n = len(cert["families"])
    if audit["passed"]:
        lines.append(f"all {n} famil{'y passes' if n == 1 else 'ies pass'} "
                     f"({audit['points']} points)")
    else:
        failed = audit["failed"]
        lines.append(f"{len(failed)} of {n} famil{'y' if n == 1 else 'ies'} FAIL: "
                     + ", ".join(failed))
    return "\n".join(lines)


def _global_lines(glob: dict[str, Any]) -> list[str]:
    """The Gershgorin L over the whole graph, its shares, and the certified step 1/L."""
    if not glob:
        return []
    L = glob.get("L")
    if L is None:
        bad = [n for n, f in glob.get("families", {}).items() if not f.get("lipschitz")]
        return [f"global gradient bound: none (not Lipschitz: {', '.join(bad)}); use --solver pgd",
                ""]
    shares = ", ".join(f"{n} {_num(f['share'])}" for n, f in glob.get("families", {}).items()
                       if f.get("share"))
    where = f" at {glob['variable']}" if glob.get("variable") else ""
    where += f" ({shares})" if shares else ""
    return [f"global gradient bound (Gershgorin): L = {_num(L)}{where}; certified step 1/L = "
            f"{_num(glob.get('certified_step'))}", ""]


def failure_lines(cert: dict[str, Any]) -> list[str]:
    """One line per failing family, naming it, the reference, the quantity and the point."""
    out = []
    for name, fam in cert["families"].items():
        if fam["passed"]:
            continue
        failing = [(ref, t) for ref, t in fam["checks"].items() if not t["passed"]]
        ref, t = max(failing, key=lambda rt: _ratio(rt[1]["worst_ratio"]))
        w = t["worst"]
        err = w["abs_error"]
        out.append(
            f"cfc check: FAIL family '{name}' (energy {fam['energy']}): {_quantity(w)} = "
            f"{w['kernel']!r} from the kernel, {_LABELS[ref]} reference {w['reference']!r} "
            f"(|error| {_num(err)} > tolerance {_num(w['tolerance'])}; "
            f"{t['failures']} of {t['checks']} checks fail) at {_point(w)}")
    return out


def _ratio(v: Any) -> float:
    return math.inf if isinstance(v, str) else float(v)
