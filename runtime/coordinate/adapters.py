"""Term-weight adapters: registered like the solvers (`--adapter NAME`, `--adapter-opt
KEY=VALUE`, a frozen options dataclass each). Between rounds of the inner solver an adapter
reads each family's weighted gradient norm and moves the effective weights, starting from
the user's own (the research code started from an empty map and lost them). Every result
also reports the energy under the user's fixed weights (`energy_fixed`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from cfc_dsl.diagnostics import CfcError, ErrorKind, Span
from cfc_dsl.runtime.coordinate.rounds import (
    Coordination,
    Round,
    fixed_energy,
    join,
    solve_round,
    weights_dict,
)
from cfc_dsl.runtime.objective import family_grad_norms
from cfc_dsl.runtime.solvers.registry import _convert, option


@dataclass(frozen=True)
class AdapterOptions:
    """The fields every adapter's options share."""

    rounds: int = option(10, "inner-solver rounds; the adapter steps between them",
                         lambda v: v >= 1, ">= 1")
    round_steps: int = option(50, "step limit of each round's inner solve",
                              lambda v: v >= 1, ">= 1")
    families: str = option("", "the families it may move, comma-separated ('': all; "
                           "smallgain: the coupling families)")


@dataclass(frozen=True)
class AdapterState:
    """What an adapter sees between rounds."""

    problem: Any
    x: np.ndarray
    energy: float
    grad_norms: np.ndarray  # ‖w_f ∇E_f‖₂ per family at x
    weights: np.ndarray  # the current effective weights
    user: np.ndarray  # the user's own weights
    movable: np.ndarray  # bool per family
    round: int


ADAPTERS: dict[str, type[Any]] = {}


def register(cls: type[Any]) -> type[Any]:
    params = getattr(cls.Options, "__dataclass_params__", None)
    if params is None or not params.frozen:
        raise TypeError(f"adapter '{cls.name}': Options must be a frozen dataclass")
    ADAPTERS[cls.name] = cls
    return cls


def adapter_names() -> tuple[str, ...]:
    return tuple(ADAPTERS)


def adapter_class(name: str, span: Span | None = None) -> type[Any]:
    if name in ADAPTERS:
        return ADAPTERS[name]
    close = difflib.get_close_matches(name, ADAPTERS, n=1)
    raise CfcError(ErrorKind.ARGUMENT, f"unknown adapter '{name}'", span,
                   (f"did you mean '{close[0]}'? " if close else "")
                   + f"available adapters: {', '.join(ADAPTERS)}")


def options_hint(name: str) -> str:
    cls = adapter_class(name)
    hints = typing.get_type_hints(cls.Options)
    keys = ", ".join(f"{f.name}: {hints[f.name].__name__} = {f.default!r}"
                     for f in dataclasses.fields(cls.Options))
    return f"adapter '{name}' takes {keys}"


def parse_options(name: str, values: Mapping[str, Any] | Any = None,
                  spans: Mapping[str, tuple[Span | None, Span | None]] | None = None) -> Any:
    """The adapter's options from {key: value} (strings from `--adapter-opt` are converted
    by the field types), a ready dataclass, or None for the defaults."""
    cls = adapter_class(name)
    if isinstance(values, cls.Options):
        return values
    fields = {f.name: f for f in dataclasses.fields(cls.Options)}
    hints = typing.get_type_hints(cls.Options)
    out: dict[str, Any] = {}
    for key, raw in dict(values or {}).items():
        key_span, value_span = (spans or {}).get(key, (None, None))
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            raise CfcError(ErrorKind.ARGUMENT, f"adapter '{name}' has no option '{key}'",
                           key_span, (f"did you mean '{close[0]}'? " if close else "")
                           + options_hint(name))
        kind = hints[key].__name__
        try:
            value = str(raw) if kind == "str" else _convert(kind, raw)
        except (ValueError, OverflowError):
            raise CfcError(ErrorKind.ARGUMENT, f"option '{key}' of adapter '{name}' takes a "
                           f"{kind}, got {raw!r}", value_span, options_hint(name)) from None
        check, rule = fields[key].metadata.get("check"), fields[key].metadata.get("rule", "")
        if (kind == "float" and not math.isfinite(value)) or (check and not check(value)):
            raise CfcError(ErrorKind.ARGUMENT, f"option '{key}' of adapter '{name}' must be "
                           f"{rule or 'finite'}, got {raw!r}", value_span, options_hint(name))
        out[key] = value
    return cls.Options(**out)


# ---------------------------------------------------------------- the adapters
@dataclass(frozen=True)
class GradNormOptions(AdapterOptions):
    target: float = option(1.0, "the gradient norm each family is pulled toward",
                           lambda v: v > 0, "> 0")
    alpha: float = option(1.5, "GradNorm's alpha", lambda v: v >= 0, ">= 0")
    rate: float = option(0.1, "update rate", lambda v: v >= 0, ">= 0")
    floor: float = option(0.1, "the lowest weight", lambda v: v >= 0, ">= 0")
    ceiling: float = option(2.0, "the highest weight", lambda v: v > 0, "> 0")


def _valid(norms: np.ndarray) -> np.ndarray:
    """NaN or negative norms replaced by the mean of the valid ones (as the research code)."""
    ok = np.isfinite(norms) & (norms >= 0)
    fill = float(norms[ok].mean()) if ok.any() else 0.0
    return np.where(ok, norms, fill)


@register
class GradNorm:
    name: ClassVar[str] = "gradnorm"
    description: ClassVar[str] = ("w <- clamp(w (1 + rate alpha (1 - n/target)), floor, "
                                  "ceiling): raises families below the target norm")
    Options = GradNormOptions

    def step(self, s: AdapterState, o: GradNormOptions) -> np.ndarray:
        n = _valid(s.grad_norms)
        new = np.clip(s.weights * (1 + o.rate * o.alpha * (1 - n / o.target)), o.floor,
                      o.ceiling)
        return np.where(s.movable, new, s.weights)


@dataclass(frozen=True)
class BalanceOptions(AdapterOptions):
    target: float = option(1.0, "the gradient norm a scaled-down family is brought to",
                           lambda v: v >= 1e-9, ">= 1e-9")
    ratio: float = option(10.0, "scale down only when norm / target exceeds this",
                          lambda v: v >= 1, ">= 1")


@register
class Balance:
    name: ClassVar[str] = "balance"
    description: ClassVar[str] = ("auto-balance: a family whose gradient norm exceeds "
                                  "ratio x target is scaled down to the target")
    Options = BalanceOptions

    def step(self, s: AdapterState, o: BalanceOptions) -> np.ndarray:
        n = s.grad_norms
        hot = s.movable & np.isfinite(n) & (n > 0) & (n / o.target > o.ratio)
        return np.where(hot, s.weights * o.target / np.where(hot, n, 1.0), s.weights)


@dataclass(frozen=True)
class SmallGainOptions(AdapterOptions):
    rho: float = option(0.7, "the share of the Lipschitz margin the raises may spend",
                        lambda v: 0 <= v <= 1, "in [0, 1]")
    lmax: float = option(0.0, "the certified L allowed (0: twice L at the user's weights); "
                         "margin = lmax - L(user)", lambda v: v >= 0, ">= 0")
    max_step_change: float = option(0.1, "a raise multiplies a weight by at most 1 + this",
                                    lambda v: v > 0, "> 0")
    floor: float = option(0.1, "the lowest weight", lambda v: v >= 0, ">= 0")
    ceiling: float = option(3.0, "the highest weight", lambda v: v > 0, "> 0")
    ema: float = option(0.3, "smoothing of the value/cost scores", lambda v: 0 < v <= 1,
                        "in (0, 1]")


class _Weighted:
    """A problem seen at other weights, for the certified L (lipschitz.py's Problem)."""

    def __init__(self, problem: Any, weights: np.ndarray):
        self.weights, self.bound, self.kernels = weights, problem.bound, problem.kernels


def certified_L(problem: Any, weights: np.ndarray) -> tuple[float, np.ndarray]:
    """(L, each family's share of the row that sets it) at `weights`."""
    from cfc_dsl.runtime.lipschitz import global_lipschitz

    gb = global_lipschitz(_Weighted(problem, np.array(weights, dtype=np.float64)), refine=False)
    return gb.L, np.array([f.share for f in gb.families])


@register
class SmallGain:
    name: ClassVar[str] = "smallgain"
    description: ClassVar[str] = ("raises the coupling families with the highest value/cost "
                                  "while the certified L stays within L(user) + rho x margin")
    Options = SmallGainOptions

    def __init__(self) -> None:
        self.scores: np.ndarray | None = None
        self.spent = 0.0

    def step(self, s: AdapterState, o: SmallGainOptions) -> np.ndarray:
        L0 = certified_L(s.problem, s.user)[0]
        lmax = o.lmax or 2.0 * L0
        if not (math.isfinite(L0) and lmax > L0):
            return s.weights  # no certified bound, or no margin: nothing to spend
        cap = L0 + o.rho * (lmax - L0)
        w = s.weights.copy()
        L, share = certified_L(s.problem, w)
        cost = np.maximum(share, 1e-12) / np.maximum(np.abs(w), 1e-12)  # dL per unit weight
        score = _valid(s.grad_norms) ** 2 / cost
        self.scores = score if self.scores is None else o.ema * score + (1 - o.ema) * self.scores
        for f in np.argsort(-self.scores, kind="stable"):
            if not s.movable[f]:
                continue
            trial = w.copy()
            trial[f] = float(np.clip(w[f] * (1 + o.max_step_change), o.floor, o.ceiling))
            if trial[f] <= w[f]:
                continue
            L_trial = certified_L(s.problem, trial)[0]
            if L_trial <= cap:  # certified, not estimated: the bound is recomputed
                w, L = trial, L_trial
        self.spent = L - L0
        return w


# ---------------------------------------------------------------- the driver
def _movable(problem: Any, adapter: str, families: str) -> np.ndarray:
    names = problem.family_names
    if families.strip():
        wanted = [f.strip() for f in families.split(",") if f.strip()]
        for f in wanted:
            if f not in names:
                raise CfcError(ErrorKind.ARGUMENT, f"adapter '{adapter}': no factor family "
                               f"'{f}'", None, f"the families: {', '.join(names)}")
        return np.array([n in wanted for n in names])
    if adapter == "smallgain":  # the couplings: families whose factors join variables
        return np.array([len(t.slots) >= 2 for t in problem.bound.families])
    return np.ones(len(names), dtype=bool)


def adapt(problem: Any, solver: str, x0: np.ndarray, options: Any, progress: Any,
          adapter: str, adapter_options: Any = None) -> Any:
    """Rounds of the inner solver with the adapter stepping between them. Returns a
    `Relaxation`: the adapted energy as `energy`, the user-weight one as `energy_fixed`."""
    cls = adapter_class(adapter)
    aopts = parse_options(adapter, adapter_options)
    instance = cls()
    names, user = problem.family_names, problem.weights.copy()
    movable = _movable(problem, adapter, aopts.families)
    inner = dataclasses.replace(options, max_steps=aopts.round_steps)
    x = np.clip(np.asarray(x0, dtype=np.float64), problem.lower, problem.upper)
    energy_initial = fixed_energy(problem, x, user)
    results, rounds, relaxation = [], [], None
    try:
        for k in range(aopts.rounds):
            w = problem.weights.copy()
            relaxation = solve_round(problem, solver, inner, x, k, progress)
            result, x = relaxation.result, relaxation.result.x
            norms = family_grad_norms(np.atleast_2d(
                problem.energy_and_grad(x, per_family=True)[3]))
            rounds.append(Round(k, weights_dict(names, w), result.steps, result.energy,
                                fixed_energy(problem, x, user), result.reason.value,
                                weights_dict(names, norms)))
            results.append(result)
            if k < aopts.rounds - 1:
                state = AdapterState(problem, x, result.energy, norms, w, user, movable, k)
                problem.weights = instance.step(state, aopts)
    finally:
        problem.weights = user
    coordination = Coordination("adapter", adapter, aopts, tuple(rounds),
                                rounds[-1].energy_fixed)
    return dataclasses.replace(relaxation, result=join(results, energy_initial),
                               coordination=coordination)
