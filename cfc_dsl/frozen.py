"""`@frozen`: `@dataclass(frozen=True)` whose `__eq__`, `__hash__` and `__repr__` are
inherited instead of generated.

Python 3.11's `dataclasses` compiles every generated method with its own `exec`: six for a
frozen class with eq and repr, about 1.1 ms of CPU per class. The language's syntax, model
and diagnostics modules hold 36 of them, which every `cfc run` imports (issue 12: start-up).
`@frozen` keeps the stdlib decorator for `__init__`, `__setattr__`, `__delattr__`, `fields`,
`replace`, `asdict` and `__match_args__`, and sets three shared functions as eq, hash and
repr, which reproduce what `dataclasses` generates for `frozen=True, eq=True` (kept here on
purpose, checked against the stdlib's own methods by tests/test_frozen.py):

- `a == b`: only for the same class, the fields with `compare=True` as tuples; otherwise
  `NotImplemented`;
- `hash(a)`: the tuple of the fields with `hash=True`, or `hash=None` and `compare=True`;
- `repr(a)`: `Qualname(f=value!r, ...)` over the fields with `repr=True`, "..." when an
  object's repr reaches itself; a class's own `__repr__` (or eq/hash) still wins.
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")


def _values(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The named attributes of an object as a tuple (attrgetter returns a bare value for
    one name)."""
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    if not names:
        return lambda obj: ()
    return attrgetter(*names)


def _eq(self: Any, other: Any) -> bool:
    if other.__class__ is self.__class__:
        key = self.__class__._frozen_compare
        return bool(key(self) == key(other))
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(self.__class__._frozen_hashed(self))


@reprlib.recursive_repr()
def _repr(self: Any) -> str:
    body = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__class__._frozen_shown)
    return f"{self.__class__.__qualname__}({body})"


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def frozen(cls: type[T]) -> type[T]:
    """`@dataclass(frozen=True)` with the shared eq, hash and repr above (see the module)."""
    for name in ("__eq__", "__hash__"):  # a class's own eq or hash: leave it to dataclasses
        if name in cls.__dict__:
            raise TypeError(f"@frozen class {cls.__qualname__} defines {name}; use @dataclass")
    out: Any = dataclasses.dataclass(frozen=True, eq=False, repr=False)(cls)
    fields = dataclasses.fields(out)
    out._frozen_compare = staticmethod(_values(tuple(f.name for f in fields if f.compare)))
    out._frozen_hashed = staticmethod(_values(tuple(
        f.name for f in fields if (f.compare if f.hash is None else f.hash))))
    out._frozen_shown = tuple(f.name for f in fields if f.repr)
    out.__eq__, out.__hash__ = _eq, _hash
    if "__repr__" not in cls.__dict__:
        out.__repr__ = _repr
    return out  # type: ignore[no-any-return]
