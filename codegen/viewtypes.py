"""The prepared views' types: plain data of C text, and nothing that imports SymPy.

codegen/views.py and codegen/bounds.py build these from SymPy expressions; the templates
read them; codegen/prepared_store.py keeps them as JSON. They live apart from their
builders so that a compile whose energies are all stored renders without importing SymPy
(issue 12). A view holds strings, ints and tuples only, so a worker process can build it
and send it back (prepare.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cfc_dsl.model import Target


@dataclass(frozen=True)
class _Line:
    name: str
    code: str


@dataclass(frozen=True)
class _Grad:
    slot: str
    code: str


@dataclass(frozen=True)
class _Ahead:
    """A prefetch hint (C only) for the entry of `slot` CFC_AHEAD instances ahead: a read
    of X or V, or (`write`) of the array the slot's terms are added into."""

    slot: str
    line: str
    write: bool


@dataclass(frozen=True)
class _Variant:
    name: str
    has_gradient: bool  # the energy-and-gradient entry point (takes weight and G)
    loads: tuple[str, ...]
    unused: tuple[str, ...]
    temporaries: tuple[_Line, ...]
    energy: str
    gradient: tuple[_Grad, ...]
    prefetch: tuple[_Ahead, ...] = ()  # C only: hints for the X and G entries CFC_AHEAD ahead
    scattered: tuple[str, ...] = ()  # the slots with a gradient term, in slot order


@dataclass(frozen=True)
class _Pair:
    slot: str
    other: str
    code: str  # H_ab: added twice to the diagonal where s_slot[k] == s_other[k]


@dataclass(frozen=True)
class _SecondOrder:
    """A Hessian kernel: OUT[s_slot[k]] += weight * (code) per scatter (`cfc_hv_*` reads
    the direction V as well; `cfc_hd_*` also has `pairs`). No energy, no return value."""

    name: str
    has_direction: bool
    out: str  # the array added into: HV or D
    loads: tuple[str, ...]
    unused: tuple[str, ...]
    temporaries: tuple[_Line, ...]
    scatters: tuple[_Grad, ...]
    pairs: tuple[_Pair, ...]
    prefetch: tuple[_Ahead, ...]
    scattered: tuple[str, ...]  # the slots that own a term (a pair is its first slot's), in order


@dataclass(frozen=True)
class KernelView:
    energy: str
    eg_name: str
    e_name: str
    slots: tuple[str, ...]
    params: tuple[str, ...]
    signature: str
    formula: str
    variants: tuple[_Variant, ...]
    hv: _SecondOrder
    hd: _SecondOrder
    # per slot, which kernels add terms into it (TERMS_EG | TERMS_HV | TERMS_HD): the slot
    # copies the threaded drivers walk (templates/parallel.c.j2)
    terms: tuple[int, ...] = ()


TERMS_EG, TERMS_HV, TERMS_HD = 1, 2, 4  # the CFC_TERMS_* bits of templates/energy.c.j2


# ---------------------------------------------------------------- bounds
@dataclass(frozen=True)
class _Entry:
    target: str  # 'h[1] = h[2]'
    code: str  # '0.0' for an entry identically 0, else 'cfc__hb_round(...)'


@dataclass(frozen=True)
class BoundView:
    name: str
    slots: tuple[str, ...]
    params: tuple[str, ...]
    size: int  # k * k
    comment: str
    loads: tuple[str, ...]
    unused: tuple[str, ...]
    entries: tuple[_Entry, ...]


def views_context(views: tuple[BoundView, ...], target: Target) -> dict[str, Any]:
    """`context` of bounds already lowered to views. The bound functions are host code in
    both targets: C linkage and no unused-function warning for the helpers under nvcc."""
    cuda = target is Target.CUDA
    return {"hb": {
        "bounds": list(views),
        "linkage": 'extern "C" ' if cuda else "",
        "qualifier": "static inline __attribute__((unused))" if cuda else "static inline",
    }}



@dataclass(frozen=True)
class Prepared:
    """One energy, ready for the templates and the cache entry."""

    kernel: KernelView
    bound: BoundView
    summary: dict[str, Any]  # codegen.bounds.summary_row


__all__ = ["TERMS_EG", "TERMS_HD", "TERMS_HV", "BoundView", "KernelView", "Prepared",
           "views_context"]
