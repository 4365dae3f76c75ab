"""The provenance block of a run's outputs: what produced a result, so that a reader can
tell two results apart and redo one. cfc version, the model source's sha256, the kernel
module digest and compiler, the bound sizes, parameters, weights and data (arrays by their
sha256), the solver and its options, the seed and the schema version. No timestamps, host
names or paths: the same run gives the same block, byte for byte (`json.dumps(sort_keys)`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from cfc_dsl.version import __version__

SCHEMA_VERSION = 1  # of every JSON shape in docs/json.md; bump on a breaking change


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_array(values: Any) -> str:
    """The digest of an array's dtype, shape and bytes (C order)."""
    a = np.ascontiguousarray(values)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def _value(v: Any) -> Any:
    """A JSON value: a number as itself, an array by its digest."""
    a = np.asarray(v)
    if a.ndim == 0:
        x = a.item()
        return x if isinstance(x, (int, bool)) else float(x)
    return {"sha256": sha256_array(a), "shape": list(a.shape)}


def options_json(options: Any) -> dict[str, Any]:
    if options is None:
        return {}
    if dataclasses.is_dataclass(options) and not isinstance(options, type):
        return dataclasses.asdict(options)
    return dict(options)


def compiler_json(compiled: Any) -> dict[str, Any]:
    """The backend, and for compiled kernels their module digest and compiler."""
    info = getattr(compiled, "info", None)
    kind = getattr(getattr(compiled, "backend_kind", None), "value", "python")
    if info is None:
        return {"backend": kind, "module_digest": None, "compiler": None}
    tc = info.toolchain
    return {"backend": kind, "module_digest": info.digest,
            "compiler": {"command": tc.compiler, "version": tc.version,
                         "flags": list(tc.flags), "python_abi": tc.python_abi}}


def provenance(problem: Any, solver: str | None = None, options: Any = None,
               seed: int | None = None) -> dict[str, Any]:
    """The block for a bound problem (`cfc_dsl.runtime.problem.Problem`) and, for a run, its
    solver, options and seed. Keys are documented in docs/json.md."""
    bound = problem.bound
    model = bound.model
    compiled = compiler_json(problem.compiled)
    weights = getattr(problem, "weights", None)
    return {
        "schema_version": SCHEMA_VERSION,
        "cfc_version": __version__,
        "model": model.name,
        "source_sha256": sha256_text(model.source.text),
        "module_digest": compiled["module_digest"],
        "backend": compiled["backend"],
        "compiler": compiled["compiler"],
        "settings": {
            "sizes": {k: int(v) for k, v in sorted(bound.sizes.items())},
            "params": {k: _value(v) for k, v in sorted(bound.params.items())},
            "weights": ({} if weights is None else
                        {f: float(w) for f, w in zip(problem.family_names, weights,
                                                     strict=False)}),
            "data": {k: _value(v) for k, v in sorted(bound.data.items())},
            "x0_sha256": sha256_array(np.asarray(bound.x0, dtype=np.float64)),
        },
        "solver": solver,
        "solver_options": _plain(options_json(options)),
        "seed": seed,
    }


def _plain(d: Mapping[str, Any]) -> dict[str, Any]:
    """Options as JSON values (enums by value, tuples as lists)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if hasattr(v, "value") and not isinstance(v, (int, float, str, bool)):
            v = v.value
        out[k] = list(v) if isinstance(v, tuple) else v
    return out
