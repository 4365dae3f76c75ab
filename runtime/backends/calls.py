"""How CBackend calls the generated kernels: one family's call with its tables bound once
(`bound_call`), and the family array `cfc_eg_all` walks to run every family in one C call
(`family_array`; templates/family.h.j2)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from cfc_dsl.runtime.bind.tables import BoundModel


def family_array(ffi: Any, lib: Any, bound: BoundModel,
                 calls: list[tuple[Any, Any, list[Any], float]], keep: list[Any]) -> Any:
    """The `cfc_family[]` cfc_eg_all walks: per family its energy's `cfc_egv_` wrapper, its
    size and its table pointers (slots, then params, as the per-family calls take them).
    The pointer arrays go into `keep` (the struct only points at them). None for a library
    built before cfc_eg_all existed (its cdef lacks it): the per-family calls then serve."""
    if not calls or not hasattr(lib, "cfc_eg_all"):
        return None
    families = ffi.new("cfc_family[]", len(calls))
    for f, (table, (_, _, args, _)) in enumerate(zip(bound.families, calls, strict=True)):
        tables = ffi.new("void *[]", args[1:])
        keep.append(tables)
        families[f].eg = getattr(lib, f"cfc_egv_{table.energy}")
        families[f].n = table.size
        families[f].args = tables
    return families


def bound_call(fn: Any, head: tuple[Any, ...]) -> Callable[..., float]:
    """`fn(*head, *rest)` as a function of `rest`: a functools.partial, which joins the
    arguments in C, cheaper than unpacking tuples in Python, and that counts where a kernel
    call itself takes about 1 us. (The threaded drivers are bound the same way, threads.py.)"""
    return partial(fn, *head)


__all__ = ["bound_call", "family_array"]
