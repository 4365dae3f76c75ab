"""Audit certificates: the audit's results tied to the exact source, generated C and binary.

A certificate is one JSON object, written with sorted keys, floats as Python's repr, no
timestamps and no machine-dependent paths beyond those the user gave, so the same source,
build, settings and seed give the same bytes. `verify` re-runs the audit with the
certificate's own settings and lists every field that differs.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.frontend import MAX_MODEL_BYTES, open_input, read_input
from cfc_dsl.model import Model, Target
from cfc_dsl.runtime.audit.gradients import AuditOptions, AuditReport, FamilyAudit, audit, method
from cfc_dsl.runtime.bind.points import read_json
from cfc_dsl.runtime.bind.tables import BoundModel, DataInput, Setting

KIND = "cfc-audit-certificate"
SCHEMA = 1
MAX_CERTIFICATE_BYTES = 64 * 2 ** 20  # a few kB per family
CERTIFICATE_HINT = "a certificate is the JSON file written by 'cfc check --certificate'"
LIPSCHITZ_NORM = ("spectral norm of the matrix of entrywise Hessian bounds |d2E/dx_i dx_j| "
                  "over each instance's box, max over instances, times |weight|")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, what: str = "file") -> str:
    """The digest of a regular file, read in chunks (a FIFO or device is refused)."""
    digest = hashlib.sha256()
    with open_input(Path(path), what, limit=None, hint="pass a regular file") as (file, _):
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------- the Lipschitz section
def lipschitz_section(family: FamilyAudit, bound: BoundModel,
                      cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """Formula and value of the family's gradient Lipschitz bound (from cfc_dsl.lipschitz)."""
    try:
        from cfc_dsl.lipschitz import bound_formula, evaluate_bound, hessian_bound
    except ImportError:
        return {"status": "unavailable", "reason": "cfc_dsl.lipschitz is not installed"}
    cache = {} if cache is None else cache
    d, table = family.derived, family.table
    if d.name not in cache:
        cache[d.name] = hessian_bound(d)
    hb = cache[d.name]
    out: dict[str, Any] = {"status": "ok", "lipschitz": bool(hb.lipschitz), "reason": hb.reason,
                           "formula": list(bound_formula(hb)), "norm": LIPSCHITZ_NORM,
                           "weight": float(table.weight), "value": None, "unweighted": None}
    if table.size == 0 or not d.slots:
        out["value"] = out["unweighted"] = 0.0
        return out
    params: dict[str, np.ndarray | float] = {p.name: table.params[j]
                                             for j, p in enumerate(d.params)}
    lower = {s.name: bound.lower[table.slots[j]] for j, s in enumerate(d.slots)}
    upper = {s.name: bound.upper[table.slots[j]] for j, s in enumerate(d.slots)}
    matrices = np.asarray(evaluate_bound(hb, params, lower, upper), dtype=np.float64)
    unweighted = _max_spectral_norm(matrices)
    out["unweighted"] = unweighted
    out["value"] = abs(float(table.weight)) * unweighted if unweighted != 0 else 0.0
    if not math.isfinite(out["value"]) and out["lipschitz"]:  # e.g. x^4 on a box of 1e300
        out["lipschitz"] = False
        out["reason"] = "its curvature has no finite bound on the variables' box"
    return out


def _max_spectral_norm(matrices: np.ndarray) -> float:
    if matrices.size == 0:
        return 0.0
    flat = np.unique(matrices.reshape(matrices.shape[0], -1), axis=0)
    k = matrices.shape[1]
    best = 0.0
    for row in flat:
        m = np.abs(row.reshape(k, k))
        if not np.all(np.isfinite(m)):
            return math.inf
        best = max(best, float(np.linalg.norm(m, 2)))
    return best


# ---------------------------------------------------------------- building a certificate
def versions() -> dict[str, str]:
    import cffi
    import mpmath
    import sympy

    from cfc_dsl.version import __version__

    return {"cfc": __version__, "sympy": sympy.__version__, "mpmath": mpmath.__version__,
            "cffi": cffi.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def build_section(model: Model, kernels: Any) -> dict[str, Any]:
    info = kernels.info
    meta = json.loads((Path(info.path) / "entry.json").read_text())
    c_path = Path(info.path) / "kernels.c"
    c_text = c_path.read_text()
    from cfc_dsl.codegen.render import render_model

    rendered = render_model(model, Target.C)
    # a split build compiled its units (build/units.py), not kernels.c: they must match too
    compiled = {str(name): (Path(info.path) / str(name)).read_text()
                for name in meta.get("units") or ()}
    split = {u.name: u.source for u in rendered.units} if compiled else {}
    return {
        "target": Target.C.value, "cache_key": info.digest, "module": str(meta.get("module")),
        "c_sha256": sha256_bytes(c_text.encode()),
        "module_sha256": sha256_file(Path(info.path) / str(meta["library"])),
        "c_matches_render": rendered.source == c_text and compiled == split,
    }


def toolchain_section(kernels: Any) -> dict[str, Any]:
    tc = kernels.info.toolchain
    return {"compiler": tc.compiler, "compiler_version": tc.version, "flags": list(tc.flags),
            "python_abi": tc.python_abi}


def make_certificate(source_path: str, source_bytes: bytes, model: Model, bound: BoundModel,
                     kernels: Any, report: AuditReport, settings: Mapping[str, float],
                     data: Mapping[str, str]) -> dict[str, Any]:
    """The certificate object (also what `cfc check --json` prints)."""
    opts = report.options
    cache: dict[str, Any] = {}
    families = {}
    for fam in report.families:
        entry = fam.to_json()
        entry["lipschitz"] = lipschitz_section(fam, bound, cache)
        families[fam.family] = entry
    cert = {
        "kind": KIND, "schema": SCHEMA, "model": model.name,
        "source": {"path": source_path, "sha256": sha256_bytes(source_bytes)},
        "bind": {"set": {k: float(v) for k, v in settings.items()},
                 "data": {k: {"path": p, "sha256": sha256_file(Path(p))} for k, p in data.items()}},
        "build": build_section(model, kernels),
        "toolchain": toolchain_section(kernels),
        "versions": versions(),
        "audit": {"seed": opts.seed, "samples": opts.samples, "rtol": opts.rtol,
                  "dps": opts.dps, "passed": report.passed,
                  "points": sum(f.points.get("total", 0) for f in report.families),
                  "failed": [f.family for f in report.failures], "method": method()},
        "families": families,
        "global_lipschitz": global_lipschitz_section(model, bound, kernels),
    }
    return clean(cert)


def global_lipschitz_section(model: Model, bound: BoundModel, kernels: Any) -> dict[str, Any]:
    """The Gershgorin L of the bound model, each family's share, and the certified step."""
    from cfc_dsl.runtime.lipschitz import lipschitz_report
    from cfc_dsl.runtime.problem import CompiledModel, Problem

    report = lipschitz_report(Problem(CompiledModel(model, kernels), bound), refine=True)
    L = report.get("L")
    report["certified_step"] = (1.0 / L) if L else None
    return report


def clean(value: Any) -> Any:
    """JSON-safe and deterministic: non-finite floats as strings, NumPy scalars as Python."""
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else repr(f)
    return value


def dumps(cert: Mapping[str, Any]) -> str:
    return json.dumps(cert, sort_keys=True, indent=2, ensure_ascii=True,
                      allow_nan=False) + "\n"


def write(cert: Mapping[str, Any], path: Path) -> str:
    """Write the certificate; returns the sha256 of its bytes (the way to cite it)."""
    from cfc_dsl.runtime.outputs import write_output

    text = dumps(cert)
    write_output(path, text.encode(), "--certificate")
    return sha256_bytes(text.encode())


# ---------------------------------------------------------------- one full check
@dataclass
class CheckRun:
    model: Model
    bound: BoundModel
    kernels: Any
    report: AuditReport
    certificate: dict[str, Any]


def run_check(model_path: str, settings: Sequence[Setting] = (),
              data_inputs: Sequence[DataInput] = (),
              options: AuditOptions | None = None, model: Model | None = None) -> CheckRun:
    """Load, bind, build and audit `model_path`; returns the report and its certificate."""
    options = options or AuditOptions()
    from cfc_dsl.derive import derive_model
    from cfc_dsl.frontend import load_file
    from cfc_dsl.runtime.bind.tables import bind
    from cfc_dsl.runtime.build.pipeline import build

    path = Path(model_path)
    source_bytes = read_input(path, "model file", limit=MAX_MODEL_BYTES,
                              hint="check the path; model files end in .cfc")
    model = model if model is not None else load_file(path)
    bound = bind(model, tuple(settings), tuple(data_inputs))
    kernels = build(model, Target.C)
    report = audit(bound, kernels, options, derive_model(model))
    set_record = {s.name: float(s.value) for s in settings}
    data_record = {d.name: str(d.value) for d in data_inputs}
    cert = make_certificate(str(model_path), source_bytes, model, bound, kernels, report,
                            set_record, data_record)
    return CheckRun(model, bound, kernels, report, cert)


# ---------------------------------------------------------------- verification
@dataclass(frozen=True)
class Difference:
    path: str
    recorded: Any
    current: Any

    def describe(self) -> str:
        what = _MEANING.get(self.path, "")
        head = f"{self.path}: certified {_short(self.recorded)}, now {_short(self.current)}"
        return head + (f" ({what})" if what else "")


_MEANING = {
    "source.sha256": "the .cfc source changed since the certificate was written",
    "build.c_sha256": "the generated C differs",
    "build.module_sha256": "the compiled module differs: another build of the kernels",
    "build.cache_key": "the build inputs (kernel spec, compiler, flags or versions) differ",
    "model": "another model",
}


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


def diff(recorded: Any, current: Any, prefix: str = "") -> list[Difference]:
    """Every leaf where two certificates differ, identity fields first."""
    out: list[Difference] = []
    if isinstance(recorded, Mapping) and isinstance(current, Mapping):
        for key in sorted(set(recorded) | set(current)):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in recorded:
                out.append(Difference(path, None, current[key]))
            elif key not in current:
                out.append(Difference(path, recorded[key], None))
            else:
                out += diff(recorded[key], current[key], path)
    elif recorded != current or type(recorded) is not type(current):
        out.append(Difference(prefix, recorded, current))
    order = ["source", "model", "build", "toolchain", "versions", "bind", "audit", "families"]
    rank = {name: i for i, name in enumerate(order)}
    return sorted(out, key=lambda d: (rank.get(d.path.split(".")[0], len(order)), d.path)) \
        if not prefix else out


@dataclass
class Verification:
    certificate_path: Path
    recorded: dict[str, Any]
    run: CheckRun | None  # None: the (changed) source no longer loads or binds
    differences: list[Difference]
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.differences and self.run is not None and self.run.report.passed


def load_certificate(path: Path) -> dict[str, Any]:
    if not Path(path).exists():
        raise CfcError(ErrorKind.ARGUMENT, f"certificate '{path}' does not exist", None,
                       "write one with 'cfc check MODEL --certificate PATH'")
    # bounded: size, depth and number length are checked before the JSON parser runs
    data, _, _ = read_json(Path(path), "certificate", CERTIFICATE_HINT, MAX_CERTIFICATE_BYTES)
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise CfcError(ErrorKind.ARGUMENT, f"'{path}' is not a cfc audit certificate", None,
                       CERTIFICATE_HINT)
    if data.get("schema") != SCHEMA:
        raise CfcError(ErrorKind.ARGUMENT,
                       f"certificate '{path}' has schema {data.get('schema')!r}; this cfc "
                       f"reads schema {SCHEMA}", None, "re-run 'cfc check' with this cfc")
    return data


def verify(cert_path: Path, model_path: str | None = None) -> Verification:
    """Re-run the audit with the certificate's settings and compare field by field."""
    recorded = load_certificate(cert_path)
    source = recorded.get("source", {})
    path = model_path or str(source.get("path", ""))
    if model_path is None and not Path(path).exists():
        beside = Path(cert_path).parent / Path(path).name
        if beside.exists():
            path = str(beside)
    if not Path(path).exists():
        raise CfcError(ErrorKind.ARGUMENT, f"model file '{path}' named by the certificate "
                       "does not exist", None, "pass the model: cfc check MODEL --verify CERT")
    bind_rec = recorded.get("bind", {})
    settings = tuple(Setting(k, float(v)) for k, v in bind_rec.get("set", {}).items())
    data = tuple(DataInput(k, Path(v["path"])) for k, v in bind_rec.get("data", {}).items())
    a = recorded.get("audit", {})
    options = AuditOptions(samples=int(a.get("samples", 200)), seed=int(a.get("seed", 0)),
                           rtol=float(a.get("rtol", AuditOptions.rtol)),
                           dps=int(a.get("dps", AuditOptions.dps)))
    now = sha256_file(Path(path), "model file")
    try:
        run = run_check(path, settings, data, options)
    except CfcError as err:
        if err.kind is ErrorKind.ENVIRONMENT or now == source.get("sha256"):
            raise
        changed = Difference("source.sha256", source.get("sha256"), now)
        return Verification(Path(cert_path), recorded, None, [changed], err.render())
    current = dict(run.certificate)
    if model_path is not None:  # the path given now may be spelled differently
        current["source"] = {**current["source"], "path": source.get("path")}
    return Verification(Path(cert_path), recorded, run, diff(recorded, clean(current)))


__all__ = ["CheckRun", "Difference", "Verification", "diff", "dumps", "lipschitz_section",
           "load_certificate", "make_certificate", "run_check", "verify", "write"]
