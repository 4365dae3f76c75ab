"""A `Prepared` as JSON and back, building only the view classes (never pickle).

Encoding: a view is {"c": class name, "f": {field: value}}, a tuple {"t": [...]}, strings,
ints and booleans as themselves; the summary row is plain JSON. Decoding builds only the
classes named in `_CLASSES`, through their constructors, and checks every field against its
annotation (str, int, bool, a view class, or a tuple of one of those), so a damaged or
foreign entry raises ValueError/TypeError/KeyError (a miss for codegen/prepared_store.py)
instead of reaching the templates. Written here on purpose rather than reusing
cfc_dsl/modelcache.py's encoder: that one keeps object sharing for syntax trees, these are
small trees of strings whose every field type is known.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cfc_dsl.codegen import viewtypes
from cfc_dsl.codegen.viewtypes import Prepared

_CLASSES: dict[str, type] = {cls.__name__: cls for cls in (
    viewtypes._Line, viewtypes._Grad, viewtypes._Ahead, viewtypes._Variant, viewtypes._Pair,
    viewtypes._SecondOrder, viewtypes.KernelView, viewtypes._Entry, viewtypes.BoundView)}
_PLAIN = {"str": str, "int": int, "bool": bool}


def _encode(obj: Any) -> Any:
    if isinstance(obj, (str, bool, int)):
        return obj
    if isinstance(obj, tuple):
        return {"t": [_encode(v) for v in obj]}
    name = type(obj).__name__
    if _CLASSES.get(name) is not type(obj):
        raise TypeError(f"cannot store a {name}")
    return {"c": name, "f": {f.name: _encode(getattr(obj, f.name))
                             for f in dataclasses.fields(obj)}}


def encode(prepared: Prepared) -> dict[str, Any]:
    return {"kernel": _encode(prepared.kernel), "bound": _encode(prepared.bound),
            "summary": prepared.summary}


def _check(annotation: str, value: Any) -> Any:
    """`value` if it is what `annotation` (a field's, as text) names, else TypeError."""
    if annotation.startswith("tuple[") and annotation.endswith(", ...]"):
        if not isinstance(value, tuple):
            raise TypeError(f"expected a tuple, got {type(value).__name__}")
        inner = annotation[len("tuple["):-len(", ...]")]
        return tuple(_check(inner, v) for v in value)
    kind = _PLAIN.get(annotation) or _CLASSES.get(annotation)
    if kind is None:
        raise TypeError(f"unknown field type {annotation}")
    if type(value) is not kind:  # exact: a bool is no int here
        raise TypeError(f"expected {annotation}, got {type(value).__name__}")
    return value


def _decode(data: Any) -> Any:
    if isinstance(data, (str, bool, int)):
        return data
    if not isinstance(data, dict):
        raise TypeError(f"unexpected {type(data).__name__} in a prepared entry")
    if set(data) == {"t"}:
        return tuple(_decode(v) for v in data["t"])
    cls = _CLASSES[data["c"]]
    fields = data["f"]
    if not isinstance(fields, dict) or set(fields) != {f.name for f in dataclasses.fields(cls)}:
        raise ValueError(f"the fields of a {cls.__name__} do not match")
    return cls(**{f.name: _check(f.type, _decode(fields[f.name])) for f in dataclasses.fields(cls)})


def _summary(row: Any) -> dict[str, Any]:
    """codegen.bounds.summary_row's shape: lipschitz, reason, method (k x k strings)."""
    if not isinstance(row, dict) or set(row) != {"lipschitz", "reason", "method"}:
        raise ValueError("not a summary row")
    if type(row["lipschitz"]) is not bool or not isinstance(row["reason"], str):
        raise TypeError("a summary row's verdict is not a bool and a reason")
    method = row["method"]
    if not (isinstance(method, list) and all(isinstance(r, list) and len(r) == len(method)
                                             and all(isinstance(m, str) for m in r)
                                             for r in method)):
        raise TypeError("a summary row's methods are not a square of strings")
    return {"lipschitz": row["lipschitz"], "reason": row["reason"],
            "method": [list(r) for r in method]}  # a copy: the shipped file's stays as read


def decode(data: Any) -> Prepared:
    """The `Prepared` stored by `encode`; ValueError/TypeError/KeyError for anything else."""
    if not isinstance(data, dict) or set(data) != {"kernel", "bound", "summary"}:
        raise ValueError("not a prepared entry")
    kernel, bound = _decode(data["kernel"]), _decode(data["bound"])
    if type(kernel) is not viewtypes.KernelView or type(bound) is not viewtypes.BoundView:
        raise TypeError("a prepared entry holds a kernel view and a bound view")
    return Prepared(kernel, bound, _summary(data["summary"]))


__all__ = ["decode", "encode"]
