"""Lower stage: derived energies -> kernel IR (plain frozen data).

A `Kernel` is one energy's computation for one instance: load the slot values and
parameters, a list of CSE'd temporaries, the energy and one gradient entry per slot, and
the second-order bodies (Hessian times a direction, the Hessian's diagonal). The C and CUDA
renderers, the header and the cffi cdef are all produced from these objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import sympy as sp

from cfc_dsl.derive import DerivedEnergy
from cfc_dsl.functions import Relu, Step

SCHEMA = 2  # bump when the calling convention below changes; it is part of the cache key


@dataclass(frozen=True)
class Assignment:
    name: str
    expr: sp.Expr


@dataclass(frozen=True)
class Body:
    """A straight-line program: temporaries, then outputs over slot/param/temp symbols."""

    temporaries: tuple[Assignment, ...]
    outputs: tuple[sp.Expr, ...]


@dataclass(frozen=True)
class Kernel:
    energy: str
    slots: tuple[str, ...]
    params: tuple[str, ...]
    energy_and_grad: Body  # outputs: energy, then d/d slot for each slot
    energy_only: Body  # outputs: energy
    hessian_vector: Body  # outputs: sum_b H_ab * u_b for each slot a (u: the direction V)
    hessian_diagonal: Body  # outputs: H_aa for each slot a, then H_ab for each pair a < b

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The slot pairs a < b, in the order of `hessian_diagonal`'s off-diagonal outputs
        (an instance whose two slots hold one variable adds 2 H_ab to its diagonal)."""
        return tuple(combinations(self.slots, 2))

    @property
    def hv_name(self) -> str:
        return f"cfc_hv_{self.energy}"

    @property
    def hd_name(self) -> str:
        return f"cfc_hd_{self.energy}"

    @property
    def eg_name(self) -> str:
        return f"cfc_eg_{self.energy}"

    @property
    def e_name(self) -> str:
        return f"cfc_e_{self.energy}"


@dataclass(frozen=True)
class KernelModule:
    model: str
    version: str
    kernels: tuple[Kernel, ...]


def slot_value(slot: str) -> sp.Symbol:
    return sp.Symbol(f"v_{slot}", real=True)


def param_value(param: str) -> sp.Symbol:
    return sp.Symbol(f"p_{param}", real=True)


def direction_value(slot: str) -> sp.Symbol:
    """The direction's entry at a slot's variable, V[s_<slot>[k]], in the HVP body."""
    return sp.Symbol(f"u_{slot}", real=True)


def param_loads(params: tuple[str, ...], used: set[str]) -> tuple[list[str], list[str]]:
    """Per-instance loads of the parameters an expression reads, and the unused pointers."""
    loads, unused = [], []
    for p in params:
        v = param_value(p).name
        if v in used:
            loads.append(f"const double {v} = P_{p}[k];")
        else:
            unused.append(f"P_{p}")
    return loads, unused


def _relu_argument(factor: sp.Expr) -> sp.Expr | None:
    base, exp = factor.as_base_exp()
    return base.args[0] if isinstance(base, Relu) and exp.is_positive else None


def fold_relu_step(expr: sp.Expr) -> sp.Expr:
    """relu(u)^k * step(u) -> relu(u)^k (k > 0), the shape of every squared hinge's gradient.

    Exact for every u, NaN and infinities included: where step(u) is not 1, relu(u)^k is
    0 (or NaN). The kernels save a comparison per instance whose outcome is a coin flip.
    """
    def fold(product: sp.Expr) -> sp.Expr:
        relus = {_relu_argument(f) for f in product.args} - {None}
        kept = [f for f in product.args if not (isinstance(f, Step) and f.args[0] in relus)]
        return sp.Mul(*kept) if len(kept) < len(product.args) else product

    return expr.replace(lambda e: e.is_Mul, fold)


def _body(exprs: list[sp.Expr]) -> Body:
    temps, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("t", real=True), optimizations=None)
    return Body(tuple(Assignment(str(s), e) for s, e in temps), tuple(reduced))


def lower(energy: DerivedEnergy) -> Kernel:
    rename = {s: slot_value(s.name) for s in energy.slots}
    rename.update({p: param_value(p.name) for p in energy.params})
    expr = energy.expr.xreplace(rename)
    grad = [fold_relu_step(g.xreplace(rename)) for g in energy.grad]
    hess = [[fold_relu_step(h.xreplace(rename)) for h in row] for row in energy.hess]
    u = [direction_value(s.name) for s in energy.slots]
    k = len(energy.slots)
    return Kernel(
        energy=energy.name,
        slots=tuple(s.name for s in energy.slots),
        params=tuple(p.name for p in energy.params),
        energy_and_grad=_body([expr, *grad]),
        energy_only=_body([expr]),
        hessian_vector=_body([sp.Add(*[h * ub for h, ub in zip(row, u, strict=True)])
                              for row in hess]),
        hessian_diagonal=_body([hess[a][a] for a in range(k)]
                               + [hess[a][b] for a, b in combinations(range(k), 2)]),
    )


def lower_module(model_name: str, version: str, energies: tuple[DerivedEnergy, ...]) -> KernelModule:
    kernels = tuple(lower(e) for e in sorted(energies, key=lambda e: e.name))
    return KernelModule(model_name, version, kernels)
