"""Locality at bind time: the instance tables in an order the kernels walk quickly.

`sort` orders each family's instances by their first variable (stable, so ties keep the
user's order); `rcm` first renumbers the variables by reverse Cuthill-McKee on the
interaction graph, so neighbours sit close in memory. Only the C backend sees the result:
it permutes x in and the gradient out, so values, traces and messages keep the user's
indices. Reorderings are cached by a digest of the index tables, so a rebind with the same
data (other parameters or weights included) does not sort again.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from dataclasses import field
from enum import Enum

import numpy as np

from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.frozen import frozen
from cfc_dsl.runtime.bind.copies import SlotCopies, slot_copies


class Reorder(Enum):
    NONE = "none"
    SORT = "sort"
    RCM = "rcm"

    @classmethod
    def parse(cls, value: str | Reorder | None) -> Reorder:
        if value is None:  # CFC_REORDER (cfc --reorder sets it), else sort
            value = os.environ.get("CFC_REORDER", "").strip() or cls.SORT.value
        if isinstance(value, Reorder):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise CfcError(ErrorKind.ARGUMENT, f"unknown reordering '{value}'", None,
                           "choose one of: none, sort, rcm") from None


@frozen
class Locality:
    """Instance order per family (None: as bound) and the variable numbering."""

    mode: Reorder
    perm: np.ndarray | None  # internal variable j is the user's perm[j]; None: identity
    inverse: np.ndarray | None  # the user's variable i is internal inverse[i]
    orders: tuple[np.ndarray | None, ...]  # per family: instance k is the bound one orders[k]
    slots: tuple[tuple[np.ndarray, ...], ...]  # per family: renumbered, reordered indices
    # family -> its slot copies (bind/copies.py): built on the first threaded call, kept
    # with the rest, so a rebind with other parameters does not sort again
    copies: dict[int, SlotCopies] = field(default_factory=dict, repr=False, compare=False)

    def slot_copies(self, family: int, nv: int) -> SlotCopies:
        if family not in self.copies:
            self.copies[family] = slot_copies(nv, self.slots[family])
        return self.copies[family]

    def params(self, family: int, params: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        order = self.orders[family]
        if order is None:
            return params
        return tuple(np.ascontiguousarray(p[order]) if p.shape[:1] == order.shape else p
                     for p in params)


_CACHE: OrderedDict[tuple[str, Reorder], Locality] = OrderedDict()
_CACHE_SIZE = 4


def digest(n: int, slots: tuple[tuple[np.ndarray, ...], ...]) -> str:
    """A digest of the index tables alone: what the reordering depends on."""
    h = hashlib.blake2b(f"{n}\n".encode(), digest_size=16)
    for family in slots:
        h.update(f"{len(family)}\n".encode())
        for arr in family:
            h.update(np.ascontiguousarray(arr, dtype=np.int64).data)
    return h.hexdigest()


def _rcm(n: int, slots: tuple[tuple[np.ndarray, ...], ...]) -> tuple[np.ndarray, np.ndarray]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    rows, cols = [], []
    for family in slots:
        for a in range(len(family)):
            for b in range(a + 1, len(family)):
                rows += [family[a], family[b]]
                cols += [family[b], family[a]]
    if not rows:
        ident = np.arange(n, dtype=np.int64)
        return ident, ident
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(r.shape[0], dtype=np.int8), (r, c)), shape=(n, n)).tocsr()
    perm = np.asarray(reverse_cuthill_mckee(graph, symmetric_mode=True), dtype=np.int64)
    inverse = np.empty(n, dtype=np.int64)
    inverse[perm] = np.arange(n, dtype=np.int64)
    return perm, inverse


def _compute(n: int, slots: tuple[tuple[np.ndarray, ...], ...], mode: Reorder) -> Locality:
    perm = inverse = None
    if mode is Reorder.NONE:
        return Locality(mode, None, None, tuple(None for _ in slots),
                        tuple(tuple(np.ascontiguousarray(s, dtype=np.int64) for s in f)
                              for f in slots))
    if mode is Reorder.RCM:
        perm, inverse = _rcm(n, slots)
        if np.array_equal(perm, np.arange(n)):
            perm = inverse = None
    orders: list[np.ndarray | None] = []
    tables: list[tuple[np.ndarray, ...]] = []
    for family in slots:
        renamed = family if inverse is None else tuple(inverse[s] for s in family)
        order = None
        if mode is not Reorder.NONE and renamed and renamed[0].size > 1:
            first = renamed[0]
            if np.any(first[1:] < first[:-1]):
                order = np.argsort(first, kind="stable")
        orders.append(order)
        tables.append(tuple(np.ascontiguousarray(s if order is None else s[order],
                                                 dtype=np.int64) for s in renamed))
    return Locality(mode, perm, inverse, tuple(orders), tuple(tables))


def locality(n: int, slots: tuple[tuple[np.ndarray, ...], ...],
             mode: Reorder = Reorder.SORT) -> Locality:
    """The reordering of these tables (from the cache when the same tables were seen)."""
    key = (digest(n, slots), mode)
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit
    result = _compute(n, slots, mode)
    _CACHE[key] = result
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return result


__all__ = ["Locality", "Reorder", "digest", "locality"]
