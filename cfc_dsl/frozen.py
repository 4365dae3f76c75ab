"""`@frozen`: `@dataclass(frozen=True)` without compiling any method when the class is made.

Python 3.11's `dataclasses` writes each generated method as source text and compiles it
with its own `exec`: six for a frozen class with eq and repr, ~0.15 ms each. The classes a
cache-hit `cfc run` imports (the language's syntax, model and diagnostics, the runtime's
tables and records) made that ~50 ms of its start-up (issue 12). `@frozen` keeps the stdlib
decorator for everything it does without compiling (the fields, `fields`, `replace`,
`asdict`, `__match_args__`, `__dataclass_params__`) and supplies the methods itself:

- `__eq__`, `__hash__`, `__repr__`: three shared functions that reproduce what
  `dataclasses` generates for `frozen=True, eq=True`: `a == b` only for the same class,
  over the fields with `compare=True` as tuples, else `NotImplemented`; `hash(a)` of the
  tuple of the fields with `hash=True`, or `hash=None` and `compare=True`;
  `repr(a)` as `Qualname(f=value!r, ...)` over the fields with `repr=True`, "..." when an
  object's repr reaches itself. A class's own `__repr__` still wins.
- `__setattr__`, `__delattr__`: closures with the stdlib's test and messages.
- `__init__`: one compiled template per shape (how many fields, which have a default
  factory, whether there is a `__post_init__`), shared by every class of that shape, with
  its parameter names and attribute-name constants replaced by the class's field names
  (`CodeType.replace`), defaults and annotations as the stdlib sets them. So the code is
  what `dataclasses` would compile for the class, compiled once per shape.

A class `@frozen` cannot take that way (a dataclass base, `InitVar`, `KW_ONLY`, a field with
`init=False` or `kw_only=True`, its own `__init__`/`__setattr__`/`__delattr__`) is made by
the stdlib decorator, with the shared eq, hash and repr as above. tests/test_frozen.py
checks every class against a twin made by the stdlib (signature, defaults, annotations, doc,
eq, hash, repr, frozen errors) on every node of every example's model. Kept here on
purpose: no library makes dataclasses without compiling them.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import reprlib
import types
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


# ---------------------------------------------------------------- __init__ without exec
class _Factory:
    """The default of a parameter whose field has a default factory (the stdlib's is private
    to `dataclasses`; this one prints the same, so signatures read the same)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def _placeholder(i: int) -> str:
    return f"_cfc_field_{i}"


@functools.cache
def _template(count: int, factories: frozenset[int], post_init: bool) -> types.CodeType:
    """`__init__(self, <count fields>)` storing each through `_set` (object.__setattr__),
    calling `_factory<i>()` where field i's value is the `_FACTORY` default, then
    `self.__post_init__()` if asked: the body `dataclasses` writes for a frozen class."""
    names = [_placeholder(i) for i in range(count)]
    lines = [f"def __init__(self{''.join(', ' + n for n in names)}):"]
    for i, name in enumerate(names):
        if i in factories:
            lines.append(f"    if {name} is _FACTORY: {name} = _factory{i}()")
        lines.append(f"    _set(self, {name!r}, {name})")
    lines.append("    self.__post_init__()" if post_init else "    pass")
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), {}, namespace)  # once per shape, not per class
    return namespace["__init__"].__code__  # type: ignore[no-any-return]


def _init(cls: type, fields: tuple[dataclasses.Field[Any], ...]) -> Callable[..., None]:
    names = tuple(f.name for f in fields)
    factories = frozenset(i for i, f in enumerate(fields)
                          if f.default_factory is not dataclasses.MISSING)
    defaults, seen_default = [], False
    for i, f in enumerate(fields):
        if i in factories or f.default is not dataclasses.MISSING:
            seen_default = True
            defaults.append(_FACTORY if i in factories else f.default)
        elif seen_default:  # as the stdlib says it
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
    post_init = hasattr(cls, "__post_init__")
    code = _template(len(fields), factories, post_init)
    rename = {_placeholder(i): name for i, name in enumerate(names)}
    self_name = "__dataclass_self__" if "self" in names else "self"
    code = code.replace(
        co_varnames=(self_name, *names) + code.co_varnames[len(names) + 1:],
        co_consts=tuple(rename.get(c, c) if isinstance(c, str) else c for c in code.co_consts),
        co_qualname=f"{cls.__qualname__}.__init__", co_filename=f"<frozen {cls.__qualname__}>")
    scope: dict[str, Any] = {"__builtins__": __builtins__, "__name__": cls.__module__,
                             "_set": object.__setattr__, "_FACTORY": _FACTORY}
    scope.update({f"_factory{i}": fields[i].default_factory for i in factories})
    init = types.FunctionType(code, scope, "__init__", tuple(defaults) or None)
    init.__annotations__ = {**{f.name: f.type for f in fields}, "return": None}
    return init


def _guards(cls: type, names: tuple[str, ...]) -> tuple[Callable[..., None], ...]:
    """The stdlib's frozen `__setattr__` and `__delattr__`, as closures."""
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)  # type: ignore[misc]

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)  # type: ignore[misc]

    for fn in (__setattr__, __delattr__):
        fn.__qualname__ = f"{cls.__qualname__}.{fn.__name__}"
    return __setattr__, __delattr__


def _compiled_free(cls: type) -> bool:
    """Whether `_init` and `_guards` can make this class's methods: only plain fields."""
    if any(dataclasses.is_dataclass(base) for base in cls.__mro__[1:]):
        return False  # the stdlib checks frozen against frozen bases: leave it to it
    if any(name in cls.__dict__ for name in ("__init__", "__setattr__", "__delattr__")):
        return False
    annotations = cls.__dict__.get("__annotations__", {})
    if any("InitVar" in str(a) or "KW_ONLY" in str(a) for a in annotations.values()):
        return False
    return not any(isinstance(v, dataclasses.Field) and (not v.init or v.kw_only is True)
                   for v in cls.__dict__.values())


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def frozen(cls: type[T]) -> type[T]:
    """`@dataclass(frozen=True)` with the methods above (see the module)."""
    for name in ("__eq__", "__hash__"):  # a class's own eq or hash: leave it to dataclasses
        if name in cls.__dict__:
            raise TypeError(f"@frozen class {cls.__qualname__} defines {name}; use @dataclass")
    out: Any
    if _compiled_free(cls):
        documented = bool(cls.__doc__)
        if not documented:  # or the stdlib works out a doc from object's signature (slow)
            cls.__doc__ = "-"
        out = dataclasses.dataclass(init=False, repr=False, eq=False)(cls)  # compiles nothing
        fields = dataclasses.fields(out)
        out.__init__ = _init(out, fields)
        out.__setattr__, out.__delattr__ = _guards(out, tuple(f.name for f in fields))
        params = out.__dataclass_params__
        params.init = params.frozen = True  # what @dataclass(frozen=True, eq=False) records
        if not documented:  # the stdlib's doc, from the signature it could not see yet
            out.__doc__ = out.__name__ + str(inspect.signature(out)).replace(" -> None", "")
    else:
        out = dataclasses.dataclass(frozen=True, eq=False, repr=False)(cls)
        fields = dataclasses.fields(out)
    out._frozen_compare = staticmethod(_values(tuple(f.name for f in fields if f.compare)))
    out._frozen_hashed = staticmethod(_values(tuple(
        f.name for f in fields if (f.compare if f.hash is None else f.hash))))
    out._frozen_shown = tuple(f.name for f in fields if f.repr)
    out.__eq__, out.__hash__ = _eq, _hash
    if "__repr__" not in cls.__dict__:
        out.__repr__ = _repr
    return out  # type: ignore[no-any-return]
