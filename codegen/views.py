"""Views of kernels for the templates: kernel IR -> plain data of C text.

Python decides everything here (which values to load, which gradients are identically
zero, the printed expressions); the Jinja templates only interpolate and loop. A view holds
strings and tuples only, so a worker process can build it and send it back (prepare.py).
The view types themselves are in codegen/viewtypes.py (SymPy-free).
"""

from __future__ import annotations

from cfc_dsl.codegen.ir import Body, Kernel, direction_value, param_loads, slot_value
from cfc_dsl.codegen.printer import ccode
from cfc_dsl.codegen.viewtypes import (
    TERMS_EG,
    TERMS_HD,
    TERMS_HV,
    KernelView,
    _Ahead,
    _Grad,
    _Line,
    _Pair,
    _SecondOrder,
    _Variant,
)
from cfc_dsl.model import EnergySpec


def _used_symbols(body: Body) -> set[str]:
    names: set[str] = set()
    for a in body.temporaries:
        names |= {s.name for s in a.expr.free_symbols}
    for out in body.outputs:
        names |= {s.name for s in out.free_symbols}
    return names


def _variant(kernel: Kernel, body: Body, name: str, gradient: bool) -> _Variant:
    used = _used_symbols(body)
    read = [s for s in kernel.slots if slot_value(s).name in used]
    loads = [f"const double {slot_value(s).name} = X[s_{s}[k]];" for s in read]
    params, unused = param_loads(kernel.params, used)
    loads += params
    grads: list[_Grad] = []
    if gradient:
        for s, g in zip(kernel.slots, body.outputs[1:], strict=False):
            if g != 0:
                grads.append(_Grad(s, ccode(g)))
        if not grads:  # the parameters stay: the calling convention does not depend on it
            unused.append("weight")
            unused.append("G")
    scattered = {g.slot for g in grads}
    for s in kernel.slots:  # a slot index is used by its load or by its gradient scatter
        if slot_value(s).name not in used and s not in scattered:
            unused.append(f"s_{s}")
    if not read:
        unused.append("X")
    # gathers (read) first, then scatters (write), each in slot order: deterministic text
    prefetch = [_Ahead(s, f"CFC_PREFETCH(&X[s_{s}[k + CFC_AHEAD]], 0);", False) for s in read]
    prefetch += [_Ahead(g.slot, f"CFC_PREFETCH(&G[s_{g.slot}[k + CFC_AHEAD]], 1);", True)
                 for g in grads]
    return _Variant(name, gradient, tuple(loads), tuple(sorted(set(unused))),
                    tuple(_Line(a.name, ccode(a.expr)) for a in body.temporaries),
                    ccode(body.outputs[0]), tuple(grads), prefetch=tuple(prefetch),
                    scattered=_in_order(kernel, {g.slot for g in grads}))


def _in_order(kernel: Kernel, slots: set[str]) -> tuple[str, ...]:
    return tuple(s for s in kernel.slots if s in slots)


def _second_order(kernel: Kernel, body: Body, name: str, direction: bool) -> _SecondOrder:
    out = "HV" if direction else "D"
    used = _used_symbols(body)
    read = [s for s in kernel.slots if slot_value(s).name in used]
    toward = [s for s in kernel.slots if direction_value(s).name in used]
    loads = [f"const double {slot_value(s).name} = X[s_{s}[k]];" for s in read]
    loads += [f"const double {direction_value(s).name} = V[s_{s}[k]];" for s in toward]
    params, unused = param_loads(kernel.params, used)
    loads += params
    k = len(kernel.slots)
    scatters = [_Grad(s, ccode(h)) for s, h in zip(kernel.slots, body.outputs[:k], strict=True)
                if h != 0]
    pairs = [] if direction else [
        _Pair(a, b, ccode(h)) for (a, b), h in zip(kernel.pairs, body.outputs[k:], strict=True)
        if h != 0]
    if not scatters and not pairs:
        unused += ["n", "weight", out]  # no loop at all: the Hessian is identically 0
    touched = {g.slot for g in scatters} | {p.slot for p in pairs} | {p.other for p in pairs}
    unused += [f"s_{s}" for s in kernel.slots
               if s not in read and s not in toward and s not in touched]
    if not read:
        unused.append("X")
    if direction and not toward:
        unused.append("V")
    prefetch = [_Ahead(s, f"CFC_PREFETCH(&X[s_{s}[k + CFC_AHEAD]], 0);", False) for s in read]
    prefetch += [_Ahead(s, f"CFC_PREFETCH(&V[s_{s}[k + CFC_AHEAD]], 0);", False) for s in toward]
    prefetch += [_Ahead(g.slot, f"CFC_PREFETCH(&{out}[s_{g.slot}[k + CFC_AHEAD]], 1);", True)
                 for g in scatters]
    owners = {g.slot for g in scatters} | {p.slot for p in pairs}
    return _SecondOrder(name, direction, out, tuple(loads), tuple(sorted(set(unused))),
                        tuple(_Line(a.name, ccode(a.expr)) for a in body.temporaries),
                        tuple(scatters), tuple(pairs), tuple(prefetch), _in_order(kernel, owners))


def kernel_view(kernel: Kernel, spec: EnergySpec | None) -> KernelView:
    """What the templates read of one kernel; `spec` (if given) names it in the comment."""
    signature = formula = kernel.energy
    if spec is not None:
        signature, formula = spec.signature(), spec.formula()
    eg = _variant(kernel, kernel.energy_and_grad, kernel.eg_name, True)
    hv = _second_order(kernel, kernel.hessian_vector, kernel.hv_name, True)
    hd = _second_order(kernel, kernel.hessian_diagonal, kernel.hd_name, False)
    terms = tuple(TERMS_EG * (s in eg.scattered) + TERMS_HV * (s in hv.scattered)
                  + TERMS_HD * (s in hd.scattered) for s in kernel.slots)
    return KernelView(
        kernel.energy, kernel.eg_name, kernel.e_name, kernel.slots, kernel.params, signature, formula,
        (eg, _variant(kernel, kernel.energy_only, kernel.e_name, False)), hv, hd, terms)


__all__ = ["TERMS_EG", "TERMS_HD", "TERMS_HV", "KernelView", "kernel_view"]
