"""The solver registry: every solver is a class registered here by name, with a frozen
options dataclass and the needs it declares (a certified Lipschitz constant, Hessian-vector
products, per-family access). `--solver`, `--solver-opt`, `cfc solvers` and
`Problem.relax(solver=..., **options)` all read this table; nothing else names a solver.

The table is lazy (issue 12, start-up): the shipped solvers are known by name and module
(`BUILTIN`), and a solver's module is imported the first time its class is asked for, so
`cfc run` with the default solver never imports admm, cd or lbfgsb (and SciPy).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Flag, auto
from functools import cache
from typing import Any, ClassVar, Protocol

import numpy as np

from cfc_dsl.diagnostics import CfcError, ErrorKind, Span


class Needs(Flag):
    """What a solver asks the problem to supply before it runs."""

    NONE = 0
    LIPSCHITZ = auto()  # a certified global L (refused, naming the factor, when none exists)
    HVP = auto()  # Hessian-vector products
    PER_FAMILY = auto()  # per-family gradients from the same evaluation
    INSTANCES = auto()  # the factor instance tables: which variables share a factor

    def names(self) -> list[str]:
        return [n.name.lower() for n in Needs if n.value and n in self]  # type: ignore[union-attr]


def option(default: Any, help: str, check: Callable[[Any], bool] | None = None,
           rule: str = "") -> Any:
    """A field of a solver's options dataclass: its default, one line of help and an
    optional check on the value (with the rule it enforces, for the message)."""
    return dataclasses.field(default=default, metadata={"help": help, "check": check,
                                                         "rule": rule})


class Solver(Protocol):
    name: ClassVar[str]
    description: ClassVar[str]
    Options: ClassVar[type[Any]]  # a frozen dataclass

    def needs(self, options: Any) -> Needs: ...

    def solve(self, objective: Any, x0: np.ndarray, options: Any,
              progress: Callable[[int, float, float], None] | None = None) -> Any: ...


# the listing order; a solver not named here comes after, by name
MENU = ("auto", "pgd", "apg", "cd", "prox", "admm", "lbfgsb", "newton", "certified")
# the shipped solvers: name -> the module whose import registers it (tests/test_startup.py
# checks that each module registers exactly its name)
BUILTIN = {name: f"cfc_dsl.runtime.solvers.{name}" for name in MENU}


class _Table(Mapping[str, type[Any]]):
    """name -> solver class. Every shipped name is in the table from the start; its module
    is imported on the first lookup. Solvers registered from elsewhere are added as usual."""

    def __init__(self) -> None:
        self.loaded: dict[str, type[Any]] = {}

    def __getitem__(self, name: str) -> type[Any]:
        if name not in self.loaded and name in BUILTIN:
            importlib.import_module(BUILTIN[name])  # its @register fills `loaded`
            if name not in self.loaded:
                raise RuntimeError(f"module {BUILTIN[name]} did not register solver '{name}'")
        return self.loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in BUILTIN or name in self.loaded

    def __iter__(self) -> Iterator[str]:
        yield from BUILTIN
        yield from (name for name in self.loaded if name not in BUILTIN)

    def __len__(self) -> int:
        return len(BUILTIN) + sum(name not in BUILTIN for name in self.loaded)


SOLVERS = _Table()


def register(cls: type[Any]) -> type[Any]:
    """Class decorator: add a solver to the registry under `cls.name`."""
    if cls.name in SOLVERS.loaded:
        raise ValueError(f"solver '{cls.name}' is registered twice")
    params = getattr(cls.Options, "__dataclass_params__", None)
    if not (isinstance(cls.Options, type) and params is not None and params.frozen):
        raise TypeError(f"solver '{cls.name}': Options must be a frozen dataclass")
    SOLVERS.loaded[cls.name] = cls
    return cls


def solver_names() -> tuple[str, ...]:
    """The registered solvers in menu order (imports none of them)."""
    rank = {name: i for i, name in enumerate(MENU)}
    return tuple(sorted(SOLVERS, key=lambda n: (rank.get(n, len(MENU)), n)))


def solver_class(name: str, span: Span | None = None) -> type[Any]:
    """The registered class, or a CfcError that lists the choices."""
    if name in SOLVERS:
        return SOLVERS[name]
    import difflib

    close = difflib.get_close_matches(name, list(SOLVERS), n=1)
    guess = f"did you mean '{close[0]}'? " if close else ""
    raise CfcError(ErrorKind.ARGUMENT, f"unknown solver '{name}'", span,
                   f"{guess}available solvers: {', '.join(solver_names())} (see 'cfc solvers')")


# ---------------------------------------------------------------- options
@dataclass(frozen=True)
class OptionInfo:
    name: str
    type: str  # "int", "float" or "bool"
    default: Any
    help: str


@cache
def _type_hints(options: type) -> dict[str, Any]:
    """The options dataclass's field types, resolved once per class: get_type_hints compiles
    each string annotation (`from __future__ import annotations`) on every call, ~0.2 ms of
    every relax at N <= 10^3 (bench/small_relax.py)."""
    return typing.get_type_hints(options)


def option_infos(solver: str) -> tuple[OptionInfo, ...]:
    cls = solver_class(solver)
    hints = _type_hints(cls.Options)
    return tuple(OptionInfo(f.name, hints[f.name].__name__, f.default, f.metadata.get("help", ""))
                 for f in dataclasses.fields(cls.Options))


def options_hint(solver: str) -> str:
    keys = ", ".join(f"{o.name}: {o.type} = {o.default!r}" for o in option_infos(solver))
    return f"solver '{solver}' takes {keys}"


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _convert(kind: str, value: Any) -> Any:
    """The value as `kind`, from a string (the command line) or a Python value; ValueError
    when it is not one."""
    if isinstance(value, str):
        text = value.strip().lower()
        if kind == "bool":
            if text in _TRUE or text in _FALSE:
                return text in _TRUE
            raise ValueError
        number = float(text)  # ValueError for text that is no number
        if kind == "int":
            if not number.is_integer():
                raise ValueError
            return int(number)
        return number
    if kind == "bool":
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise ValueError
    if isinstance(value, (bool, np.bool_)):
        raise ValueError  # True is an int to Python, never a step count to us
    if kind == "int":
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return int(value)
        raise ValueError
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    raise ValueError


def parse_options(solver: str, values: Mapping[str, Any],
                  spans: Mapping[str, tuple[Span | None, Span | None]] | None = None) -> Any:
    """The solver's options dataclass from {key: value}: strings (from `--solver-opt`) are
    converted by the field types; an unknown key or bad value is a CfcError whose hint
    lists the valid keys. `spans`: key -> (span of the key, span of the value)."""
    cls = solver_class(solver)
    fields = {f.name: f for f in dataclasses.fields(cls.Options)}
    hints = _type_hints(cls.Options)
    spans = spans or {}
    out: dict[str, Any] = {}
    for key, raw in values.items():
        key_span, value_span = spans.get(key, (None, None))
        if key not in fields:
            import difflib

            close = difflib.get_close_matches(key, fields, n=1)
            guess = f"did you mean '{close[0]}'? " if close else ""
            raise CfcError(ErrorKind.ARGUMENT, f"solver '{solver}' has no option '{key}'",
                           key_span, guess + options_hint(solver))
        field, kind = fields[key], hints[key].__name__
        try:
            value = _convert(kind, raw)
        except (ValueError, OverflowError):
            raise CfcError(ErrorKind.ARGUMENT, f"option '{key}' of solver '{solver}' takes "
                           f"{'an' if kind == 'int' else 'a'} {kind}, got {raw!r}", value_span,
                           options_hint(solver)) from None
        check, rule = field.metadata.get("check"), field.metadata.get("rule", "")
        bad_float = kind == "float" and not math.isfinite(value) and not rule.endswith("inf")
        if bad_float or (check is not None and not check(value)):
            raise CfcError(ErrorKind.ARGUMENT, f"option '{key}' of solver '{solver}' must be "
                           f"{rule or 'finite'}, got {raw!r}", value_span, options_hint(solver))
        out[key] = value
    return cls.Options(**out)


# ---------------------------------------------------------------- the listing
@dataclass(frozen=True)
class SolverInfo:
    name: str
    description: str
    needs: tuple[str, ...]  # with the default options
    options: tuple[OptionInfo, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "needs": list(self.needs),
                "options": [dataclasses.asdict(o) for o in self.options]}


def solver_infos() -> tuple[SolverInfo, ...]:
    out = []
    for name in solver_names():
        cls = SOLVERS[name]
        needs = cls().needs(cls.Options())
        out.append(SolverInfo(name, cls.description, tuple(needs.names()), option_infos(name)))
    return tuple(out)


def lipschitz_free_hint(solver: str) -> str:
    """What to do when `solver` (with its options) needs an L that the model lacks."""
    cls = solver_class(solver)
    if Needs.LIPSCHITZ not in cls().needs(cls.Options()):
        return (f"run '{solver}' without the option that asks for a Lipschitz constant; its "
                "line search needs none")
    free = [n for n in solver_names()
            if Needs.LIPSCHITZ not in SOLVERS[n]().needs(SOLVERS[n].Options())]
    if not free:
        return "every registered solver needs a Lipschitz constant"
    # the default first (it routes kinks to prox), then plain pgd, the closest to certified
    picks = [n for n in ("auto", "pgd") if n in free] or free[:1]
    if len(picks) == 1:
        return f"use '--solver {picks[0]}', which needs no Lipschitz constant"
    return (f"use '--solver {picks[0]}' (the default) or '--solver {picks[1]}': neither needs "
            "a Lipschitz constant")
