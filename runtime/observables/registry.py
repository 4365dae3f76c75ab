"""The observable registry: named input-to-data maps with literal keyword arguments.

An observable turns an input (a sequence, a percolation grid, a game) into an array for
`bind(data=...)` or `--data`. A model may name one with literal arguments; the checker looks
the name up here (`lookup`) and `Observable.call` validates every argument, so nothing from
a model file is ever executed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cfc_dsl.diagnostics import CfcError, ErrorKind, Span, did_you_mean

Literal = int | float | bool | str
_LITERAL_TYPES: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str}


@dataclass(frozen=True)
class Parameter:
    """One keyword argument: its name, literal type and default."""

    name: str
    type: type
    default: Literal

    def check(self, value: Any, observable: str, span: Span | None) -> Literal:
        ok = isinstance(value, self.type) and not (self.type is not bool and isinstance(value, bool))
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)  # an int literal is a fine float
        if not ok:
            raise CfcError(ErrorKind.ARGUMENT, f"argument '{self.name}' of observable "
                           f"'{observable}' takes a {self.type.__name__}, got {value!r}", span,
                           f"write e.g. {self.name} = {self.default!r}")
        return value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Observable:
    """A registered observable: `call(**kwargs)` returns a float64 or int64 array."""

    name: str
    function: Callable[..., np.ndarray]
    parameters: tuple[Parameter, ...]
    doc: str

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""

    def call(self, span: Span | None = None, **kwargs: Any) -> np.ndarray:
        """Validate the keyword arguments (names and literal types) and compute the array."""
        known = {p.name: p for p in self.parameters}
        for key in kwargs:
            if key not in known:
                raise CfcError(ErrorKind.ARGUMENT, f"observable '{self.name}' has no argument "
                               f"'{key}'", span, did_you_mean(key, set(known)))
        values = {p.name: p.check(kwargs.get(p.name, p.default), self.name, span)
                  for p in self.parameters}
        try:
            return np.asarray(self.function(**values))
        except ValueError as exc:  # the function's own check of its arguments' ranges
            raise CfcError(ErrorKind.ARGUMENT, f"observable '{self.name}': {exc}", span,
                           f"see its arguments: {self.signature}") from None

    @property
    def signature(self) -> str:
        args = ", ".join(f"{p.name} = {p.default!r}" for p in self.parameters)
        return f"{self.name}({args})"


OBSERVABLES: dict[str, Observable] = {}


def observable(function: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Register `function` under its name. Every parameter must be keyword-only, with a
    literal annotation (int, float, bool, str) and a default, and it must have a docstring."""
    params = []
    for p in inspect.signature(function).parameters.values():
        annotation = p.annotation if isinstance(p.annotation, str) else getattr(
            p.annotation, "__name__", "")
        if p.kind is not p.KEYWORD_ONLY or annotation not in _LITERAL_TYPES \
                or p.default is p.empty:
            raise TypeError(f"observable {function.__name__}: parameter {p.name} must be "
                            "keyword-only with a literal type and a default")
        params.append(Parameter(p.name, _LITERAL_TYPES[annotation], p.default))
    if not function.__doc__:
        raise TypeError(f"observable {function.__name__} needs a docstring")
    name = function.__name__
    if name in OBSERVABLES:
        raise TypeError(f"observable {name} is registered twice")
    OBSERVABLES[name] = Observable(name, function, tuple(params), inspect.cleandoc(function.__doc__))
    return function


def lookup(name: str, span: Span | None = None) -> Observable:
    """The observable called `name`, or a CfcError with a did-you-mean hint."""
    found = OBSERVABLES.get(name)
    if found is None:
        raise CfcError(ErrorKind.SEMANTIC, f"unknown observable '{name}'", span,
                       did_you_mean(name, set(OBSERVABLES)))
    return found


def names() -> tuple[str, ...]:
    """Every registered name (importing the package registers the library's observables)."""
    return tuple(sorted(OBSERVABLES))
