"""`prox`: proximal gradient (forward-backward) with exact closed-form proximal steps.

The instances of each pair family with a closed-form prox (`proxrules.RULES`) are split into
colour classes in which no variable appears twice. Each step takes one class c as the
backward part G_c: x+ = prox_{tau (G_c + box)}(x - tau grad(F - G_c)(x)), exact per instance
and so exact for the class; everything else (families without a rule, the other classes,
linear gate terms) is the forward part. Its fixed points are exactly the stationary points
of F, a kink of G_c is handled by its prox, and a backtracking safeguard on tau accepts no
step that raises F. The research code's "prox" mode took an explicit local step and applied
pair proxes in sequence, each local step once per block member (SEED_SPEC 3.13).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cfc_dsl.runtime.solvers.base import (
    SECOND_ORDER,
    Progress,
    Run,
    SolveResult,
    SolverObjective,
    StopOptions,
    StopReason,
    usable_lipschitz,
)
from cfc_dsl.runtime.solvers.proxrules import PairRule, colour_classes, rule_for
from cfc_dsl.runtime.solvers.registry import Needs, option, register
from cfc_dsl.runtime.solvers.vectors import clip, dot


@dataclass(frozen=True)
class ProxOptions(StopOptions):
    armijo_c: float = option(1e-4, "accept when F(x+) <= F - c |x+ - x|^2 / tau",
                             lambda v: 0 < v < 1, "in (0, 1)")
    shrink: float = option(0.5, "factor applied to a rejected step tau",
                           lambda v: 0 < v < 1, "in (0, 1)")
    max_backtracks: int = option(40, "trial steps per class before it counts as stuck",
                                 lambda v: v >= 0, ">= 0")
    first_step: float = option(0.1, "without a certified L, the first step moves no "
                               "coordinate more than this fraction of its box width",
                               lambda v: 0 < v <= 1, "in (0, 1]")
    smooth: bool = option(True, "also prox the smooth pair families (quadratic, hinges); "
                          "off: only the non-smooth ones (margin_hinge)")


@dataclass(frozen=True)
class Block:
    """One colour class of one family: the instances proxed together."""

    family: int
    rule: PairRule
    u: np.ndarray
    v: np.ndarray
    params: tuple[np.ndarray, ...]

    def weights(self, family_weights: np.ndarray | None) -> np.ndarray:
        scale = 1.0 if family_weights is None else float(family_weights[self.family])
        return scale * self.params[0]

    def gradient(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """This class's share of grad F (no variable twice, so plain scatter)."""
        gx, gy = self.rule.grad(x[self.u], x[self.v], self.params)
        out = np.zeros_like(x)
        out[self.u] = w * gx
        out[self.v] = w * gy
        return out


def prox_blocks(objective: SolverObjective, smooth: bool = True) -> list[Block]:
    """The colour classes of every family whose energy has a rule (none without tables)."""
    bound = getattr(getattr(objective, "backend", None), "bound", None)
    if bound is None:
        return []
    specs = {e.name: e for e in bound.model.energies}
    blocks: list[Block] = []
    for i, table in enumerate(bound.families):
        rule = rule_for(specs.get(table.energy))
        if rule is None or len(table.slots) != 2 or not (smooth or not rule.smooth):
            continue
        u, v = table.slots
        params = tuple(np.broadcast_to(np.asarray(p, float), (table.size,)) for p in table.params)
        for members in colour_classes(u, v):
            blocks.append(Block(i, rule, u[members], v[members],
                                tuple(p[members] for p in params)))
    return blocks


def first_step(g: np.ndarray, lo: np.ndarray, hi: np.ndarray, lipschitz: float | None,
               fraction: float) -> float:
    """1/L, else the step that moves no coordinate more than `fraction` of its box."""
    if lipschitz:
        return 1.0 / lipschitz
    width = hi - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.isfinite(width) & (width > 0), np.abs(g) / width, 0.0)
    worst = float(np.max(ratio)) if ratio.size else 0.0
    if worst > 0:
        return fraction / worst
    scale = float(np.max(np.abs(g))) if g.size else 0.0
    return 1.0 if scale <= 1.0 else 1.0 / scale


@register
class ProximalGradient:
    name = "prox"
    description = ("proximal gradient: exact closed-form box-constrained proxes of quadratic, "
                   "hinge and margin pair families, one colour class per step")
    Options = ProxOptions

    def needs(self, options: ProxOptions) -> Needs:
        return SECOND_ORDER | Needs.INSTANCES  # reads the bound tables (families, slots)

    def solve(self, objective: SolverObjective, x0: np.ndarray, options: ProxOptions,
              progress: Progress | None = None) -> SolveResult:
        L = usable_lipschitz(objective)
        run = Run(objective, x0, options, self.name, None, progress)
        blocks: list[Block | None] = list(prox_blocks(objective, options.smooth)) or [None]
        taus = [first_step(run.g, run.lo, run.hi, L, options.first_step)] * len(blocks)
        k, idle, fixed = 0, 0, 0  # idle: classes in a row without an accepted step
        while run.steps < options.max_steps:
            if run.converged or idle >= len(blocks):
                reason = (StopReason.CONVERGED if run.converged or fixed >= len(blocks)
                          else StopReason.NO_DESCENT)
                if (done := run.done(reason)) is not None:
                    return done
                idle = fixed = 0
                continue
            b = k % len(blocks)
            k += 1
            trial = self._step(objective, run, blocks[b], taus[b], options)
            if trial is None or isinstance(trial, bool):
                idle += 1
                fixed += 1 if trial is True else 0
                taus[b] = max(taus[b], 1e-12) if trial is True else taus[b]
                continue
            idle = fixed = 0
            x_new, tau, backtracks, f_new, fam, g_new = trial
            taus[b] = tau * 2.0 if backtracks == 0 else tau
            if run.accept(run.steps + 1, x_new, f_new, fam, g_new, tau, backtracks, None):
                if (done := run.done(StopReason.STALLED)) is not None:
                    return done
        return run.done(StopReason.MAX_STEPS) or run.result(run.steps, StopReason.MAX_STEPS)

    @staticmethod
    def _step(objective: SolverObjective, run: Run, block: Block | None, tau: float,
              options: ProxOptions) -> tuple | bool | None:
        """An accepted forward-backward step; True when x is a fixed point for this split,
        None when no trial lowered F."""
        lo, hi = run.lo, run.hi
        w = None
        g_rest = run.g
        if block is not None:
            w = block.weights(getattr(objective, "weights", None))
            if np.any(w < 0):  # a concave pair term has no proximal step of this form
                block = None
            else:
                g_rest = run.g - block.gradient(run.x, w)
        for backtracks in range(options.max_backtracks + 1):
            z = run.x - tau * g_rest
            trial = clip(z, lo, hi)
            if block is not None:
                u, v = block.u, block.v
                trial[u], trial[v] = block.rule.prox(z[u], z[v], tau * w, block.params,
                                                     (lo[u], hi[u], lo[v], hi[v]))
            step = trial - run.x
            moved = dot(step, step)
            if moved == 0.0:
                return True
            bound = run.f - options.armijo_c * moved / tau
            f_trial, _ = objective.energy(trial)
            if math.isfinite(f_trial) and f_trial <= bound:
                f_new, fam, g_new = objective.energy_and_grad(trial)
                if not math.isfinite(f_new) or f_new <= bound:
                    return trial, tau, backtracks, f_new, fam, g_new
            tau *= options.shrink
        return None
