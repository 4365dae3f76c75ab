"""`@frozen` (cfc_dsl/frozen.py) behaves as `@dataclass(frozen=True)`: on every node of every
example's checked model, its eq, hash and repr give what the stdlib's generated methods give
for a twin class with the same fields, and the instances stay frozen."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from typing import Any

import pytest

from cfc_dsl import diagnostics, model, syntax
from cfc_dsl.frontend import load_file
from cfc_dsl.frozen import _repr, frozen
from tests.conftest import EXAMPLES

CLASSES = [obj for module in (syntax, model, diagnostics) for obj in vars(module).values()
           if isinstance(obj, type) and obj.__module__ == module.__name__
           and dataclasses.is_dataclass(obj)]


def _twin(cls: type) -> Any:
    """The same fields (defaults, compare, hash, repr flags) under the stdlib decorator."""
    ns: dict[str, Any] = {"__annotations__": {}, "__module__": cls.__module__,
                          "__qualname__": cls.__qualname__}
    for f in dataclasses.fields(cls):
        ns["__annotations__"][f.name] = f.type
        ns[f.name] = dataclasses.field(default=f.default, default_factory=f.default_factory,
                                       compare=f.compare, hash=f.hash, repr=f.repr)
    if cls.__dict__.get("__repr__", _repr) is not _repr:  # a class's own: kept by both
        ns["__repr__"] = cls.__dict__["__repr__"]
    return dataclasses.dataclass(frozen=True)(type(cls.__name__, (), ns))


TWINS = {cls: _twin(cls) for cls in CLASSES}


def _nodes(root: object) -> list[object]:
    """Every dataclass instance reachable from `root` (fields, tuples, dicts), once."""
    seen: dict[int, object] = {}
    stack = [root]
    while stack:
        obj = stack.pop()
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            if id(obj) in seen:
                continue
            seen[id(obj)] = obj
            stack.extend(getattr(obj, f.name) for f in dataclasses.fields(obj))
        elif isinstance(obj, (tuple, list, frozenset)):
            stack.extend(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
    return list(seen.values())


def test_every_language_class_is_frozen_by_the_decorator() -> None:
    assert len(CLASSES) >= 30
    for cls in CLASSES:
        assert cls.__dataclass_params__.frozen, cls  # type: ignore[attr-defined]
        assert cls.__eq__ is not object.__eq__ and cls.__hash__ is not None, cls


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.cfc")), ids=lambda p: p.stem)
def test_eq_hash_repr_match_the_stdlib_on_every_node(path: Any) -> None:
    nodes = _nodes(load_file(path))
    by_class: dict[type, list[object]] = {}
    for node in nodes:
        by_class.setdefault(type(node), []).append(node)
    assert syntax.Span not in by_class or len(by_class) > 5
    for cls, group in by_class.items():
        if cls not in TWINS:
            continue
        twin = TWINS[cls]
        for node in group:
            assert repr(node) == twin.__repr__(node)
            assert hash(node) == twin.__hash__(node)
            copy = dataclasses.replace(node)
            assert copy == node and twin.__eq__(copy, node) is True
            assert node.__eq__(object()) is NotImplemented
            with pytest.raises(dataclasses.FrozenInstanceError):
                node.__setattr__(dataclasses.fields(node)[0].name, None)
        for a, b in zip(group, group[1:] + group[:1], strict=True):  # pairs, unequal too
            assert (a == b) is twin.__eq__(a, b)


def test_compare_hash_and_repr_flags_and_recursion() -> None:
    @frozen
    class Node:
        name: str
        weight: float = dataclasses.field(default=1.0, compare=False)
        key: int = dataclasses.field(default=0, hash=False)
        hidden: list[Any] = dataclasses.field(default_factory=list, repr=False, compare=False)

    twin = _twin(Node)
    a, b = Node("a", 2.0, 3), Node("a", 5.0, 3)
    assert a == b and hash(a) == twin.__hash__(a) == hash(("a",))
    assert a != Node("a", 2.0, 4)
    assert repr(a) == twin.__repr__(a) == (
        "test_compare_hash_and_repr_flags_and_recursion.<locals>.Node(name='a', weight=2.0, "
        "key=3)")
    mine, theirs = [], []  # an object whose repr reaches itself: "..." as the stdlib's
    mine.append(Node("c", mine, 1))  # type: ignore[arg-type]
    theirs.append(twin("c", theirs, 1))
    assert repr(mine[0]) == repr(theirs[0]) and "..." in repr(mine[0])
    with pytest.raises(TypeError, match="defines __eq__"):
        @frozen
        class Own:
            x: int

            def __eq__(self, other: object) -> bool:
                return True


def _docstring(cls: type) -> str | None:
    """The docstring written in the class's source, if any (a twin has none of its own)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # made by type() in a test: its body says
        return cls.__dict__.get("_written_doc")
    return ast.get_docstring(ast.parse(source).body[0], clean=False)  # type: ignore[arg-type]


def _made_the_same(cls: type, twin: type) -> None:
    """What the stdlib's decorator generates and records, as `@frozen` made it."""
    assert str(inspect.signature(cls)) == str(inspect.signature(twin)), cls
    assert cls.__init__.__annotations__ == twin.__init__.__annotations__, cls  # type: ignore[misc]
    assert cls.__init__.__qualname__ == twin.__init__.__qualname__  # type: ignore[misc]
    assert [repr(d) for d in cls.__init__.__defaults__ or ()] == [  # type: ignore[misc]
        repr(d) for d in twin.__init__.__defaults__ or ()], cls  # type: ignore[misc]
    written = _docstring(cls)
    assert cls.__doc__ == (twin.__doc__ if written is None else written), cls
    assert cls.__match_args__ == twin.__match_args__  # type: ignore[attr-defined]
    ours, theirs = cls.__dataclass_params__, twin.__dataclass_params__  # type: ignore[attr-defined]
    assert (ours.init, ours.frozen, ours.order) == (theirs.init, theirs.frozen, theirs.order)
    assert [f.name for f in dataclasses.fields(cls)] == [f.name for f in dataclasses.fields(twin)]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__qualname__)
def test_every_language_class_has_the_stdlib_init_signature_and_doc(cls: type) -> None:
    _made_the_same(cls, TWINS[cls])
    assert cls.__init__.__code__.co_filename.startswith("<frozen ")  # type: ignore[misc]


def test_init_defaults_factories_post_init_and_errors_match_the_stdlib() -> None:
    calls: list[object] = []

    def body() -> dict[str, Any]:
        return {"__annotations__": {"self": "int", "b": "str", "c": "list[int]"},
                "b": "x", "c": dataclasses.field(default_factory=list, compare=False),
                "__post_init__": lambda obj: calls.append(obj.self)}

    ours = frozen(type("Shape", (), body()))
    theirs = dataclasses.dataclass(frozen=True)(type("Shape", (), body()))
    _made_the_same(ours, theirs)
    a, b = ours(1), theirs(1)
    assert (a.self, a.b, a.c) == (b.self, b.b, b.c) and calls == [1, 1]
    assert ours(1).c is not a.c  # a fresh list from the factory for each instance
    assert ours(2, "y", [3]).c == [3] and ours(self=4, b="z").b == "z"
    for args, kwargs in (((), {}), ((1, 2, 3, 4), {}), ((1,), {"self": 1}), ((1,), {"d": 0})):
        with pytest.raises(TypeError) as mine:
            ours(*args, **kwargs)
        with pytest.raises(TypeError) as stdlib:
            theirs(*args, **kwargs)
        assert str(mine.value) == str(stdlib.value)
    for action in (lambda o: setattr(o, "b", 0), lambda o: delattr(o, "b"),
                   lambda o: setattr(o, "new", 0)):
        with pytest.raises(dataclasses.FrozenInstanceError) as mine:
            action(a)
        with pytest.raises(dataclasses.FrozenInstanceError) as stdlib:
            action(b)
        assert str(mine.value) == str(stdlib.value)
    assert dataclasses.replace(a, b="q") == ours(1, "q") and dataclasses.asdict(a) == {
        "self": 1, "b": "x", "c": []}
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        frozen(type("Bad", (), {"__annotations__": {"a": "int", "b": "int"}, "a": 0}))


def test_classes_it_cannot_make_itself_go_to_the_stdlib() -> None:
    """A dataclass base, an InitVar or an init=False field: the stdlib compiles the methods
    (and checks what it checks), the shared eq, hash and repr stay."""
    @frozen
    class Base:
        a: int

    @frozen
    class Derived(Base):
        b: int = 2

    @frozen
    class Later:
        a: int
        n: int = dataclasses.field(default=0, init=False)

    for cls in (Derived, Later):
        assert cls.__init__.__code__.co_filename == "<string>"  # type: ignore[misc]
        assert cls.__eq__ is Base.__eq__ and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert Derived(1) == Derived(1) != Derived(1, 3) and Later(5).n == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        Derived(1).b = 0  # type: ignore[misc]
