"""Slot copies: the tables a large family's threaded kernels walk (templates/parallel.c.j2).

Copy i of a family holds all its instances (every slot and parameter) stably sorted by
slot i, and the variables are cut into fixed chunks of CHUNK consecutive indices. Chunk c
of every copy is the run of instances whose slot i falls in chunk c, so the task "chunk c"
adds slot i's gradient terms of copy i for i = 0, 1, ... into G[v] of its own variables
only: no two tasks write one variable (no race, no atomics), and each variable gets its
terms in a fixed order (slot by slot, each slot in instance order), whichever thread runs
the task and however many threads there are. Copy 0 also carries the energy: block sums in
instance order inside each chunk, chunks added in chunk order.

Why copies and not a pull table of per-term contributions: the serial kernel's cost is its
random loads from X and random adds into G, which sit in the last-level cache at 10^6
variables; a buffer of every term (16 bytes per instance and slot) does not, and gathering
it in random order cost more than the second core gained. In copy i, slot i's loads from X
and all adds into G run in order, leaving one random load per other slot.

The chunk size is a constant of this module, never of the thread count; it only has to keep
the tasks many (load balance) and each task's part of G small (it stays in L1/L2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK = 2048  # variables per task


@dataclass(frozen=True)
class SlotCopies:
    """What depends on the index tables alone (kept with the Locality across rebinds);
    the parameters are put in each copy's order per bind, by `params`."""

    orders: tuple[np.ndarray | None, ...]  # copy i is the table in orders[i] (None: as is)
    slots: tuple[tuple[np.ndarray, ...], ...]  # slots[i][j]: slot j of the copy sorted by slot i
    starts: np.ndarray  # (copies, chunks + 1): chunk c of copy i is starts[i, c]:starts[i, c + 1]

    @property
    def chunks(self) -> int:
        return int(self.starts.shape[1]) - 1

    def params(self, params: tuple[np.ndarray, ...]) -> tuple[tuple[np.ndarray, ...], ...]:
        """params[i][q]: parameter q (one value per instance) in copy i's order."""
        return tuple(params if order is None else
                     tuple(np.ascontiguousarray(p[order]) if p.shape[:1] == order.shape else p
                           for p in params)
                     for order in self.orders)


def _sorted(a: np.ndarray) -> bool:
    return a.size < 2 or not bool(np.any(a[1:] < a[:-1]))


def slot_copies(nv: int, slots: tuple[np.ndarray, ...], chunk: int | None = None) -> SlotCopies:
    """One copy per slot (a copy already in order is the table itself, not a new array);
    `chunk`: variables per task, CHUNK (read at each call, so a test can make it small)."""
    chunk = CHUNK if chunk is None else chunk
    cuts = np.arange(0, -(-max(nv, 1) // chunk) + 1, dtype=np.int64) * chunk
    orders: list[np.ndarray | None] = []
    copies: list[tuple[np.ndarray, ...]] = []
    starts = []
    for i, key in enumerate(slots):
        order = None if _sorted(key) else np.argsort(key, kind="stable")
        orders.append(order)
        copies.append(tuple(slots) if order is None
                          else tuple(np.ascontiguousarray(s[order]) for s in slots))
        starts.append(np.searchsorted(copies[-1][i], cuts, side="left"))
    table = np.array(starts, dtype=np.int64).reshape(len(slots), cuts.size)
    return SlotCopies(tuple(orders), tuple(copies), np.ascontiguousarray(table))


__all__ = ["CHUNK", "SlotCopies", "slot_copies"]
