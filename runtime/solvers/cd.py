"""`cd`: block coordinate descent over a colouring of the variable interaction graph (two
variables interact when they share a factor instance). No factor holds two variables of one
colour, so F along a colour's move is a sum of 1-D functions: all its variables take their
safeguarded 1-D Newton steps together, in parallel, halved until the move lowers F. Each
sweep visits every colour once and never raises F (the research code's CD had no such test).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cfc_dsl.runtime.solvers.base import (
    Progress,
    Rejected,
    Run,
    SolveResult,
    SolverObjective,
    StopOptions,
    StopReason,
)
from cfc_dsl.runtime.solvers.registry import Needs, option, register
from cfc_dsl.runtime.solvers.vectors import dot

if TYPE_CHECKING:  # networkx only when cd runs: registering the solver imports none
    import networkx as nx

_EPS = float(np.finfo(np.float64).eps)
COLOURING = "largest_first"  # networkx's greedy strategy: fixed, so colours are reproducible


@dataclass(frozen=True)
class CdOptions(StopOptions):
    armijo_c: float = option(1e-4, "accept a colour's move when F(x+) <= F + c g.(x+ - x)",
                             lambda v: 0 < v < 1, "in (0, 1)")
    max_halvings: int = option(30, "halvings of a colour's move before it stays put",
                               lambda v: v >= 0, ">= 0")
    max_move: float = option(0.25, "where the diagonal Hessian is <= 0, a gradient step of "
                             "at most this fraction of the box width", lambda v: 0 < v <= 1,
                             "in (0, 1]")


def interaction_graph(instances: Sequence[Sequence[np.ndarray]], n: int) -> nx.Graph:
    """Variables 0..n-1, with an edge between two that share a factor instance."""
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    for slots in instances:
        for a in range(len(slots)):
            for b in range(a + 1, len(slots)):
                pairs = np.stack([slots[a], slots[b]], axis=1)
                pairs = pairs[pairs[:, 0] != pairs[:, 1]]
                graph.add_edges_from(map(tuple, pairs.tolist()))
    return graph


def colour_classes(graph: nx.Graph) -> list[np.ndarray]:
    """The variables of each colour (sorted index arrays), from a greedy colouring."""
    import networkx as nx

    colour = nx.greedy_color(graph, strategy=COLOURING)
    labels = np.array([colour[v] for v in range(graph.number_of_nodes())], dtype=np.int64)
    return [np.flatnonzero(labels == c) for c in range(int(labels.max()) + 1)] if labels.size \
        else []


@register
class CoordinateDescent:
    name = "cd"
    description = ("block coordinate descent: a colouring of the interaction graph, each "
                   "colour's safeguarded 1-D Newton steps together")
    Options = CdOptions

    def needs(self, options: CdOptions) -> Needs:
        return Needs.HVP | Needs.INSTANCES

    def solve(self, objective: SolverObjective, x0: np.ndarray, options: CdOptions,
              progress: Progress | None = None) -> SolveResult:
        run = Run(objective, x0, options, self.name, None, progress)
        instances = objective.instances()  # type: ignore[attr-defined]
        classes = colour_classes(interaction_graph(instances, run.x.size))
        width = run.hi - run.lo
        reach = options.max_move * np.where(np.isfinite(width), width, 1.0)
        while run.steps < options.max_steps:
            if run.converged:
                if (done := run.done(StopReason.CONVERGED)) is not None:
                    return done
                continue
            x, f, fam, g = run.x, run.f, run.fam, run.g
            moved, unresolved, halvings, length = False, False, 0, 0.0
            for block in classes:
                accepted = self._move(objective, x, f, g, block, reach, options, run.steps + 1,
                                      run.rejected(run.steps + 1))
                if accepted is None or isinstance(accepted, bool):
                    unresolved = unresolved or accepted is True
                    continue
                x, f, fam, g, h, step = accepted
                moved, halvings, length = True, halvings + h, max(length, step)
            if not moved:  # no colour could lower F: stalled where F cannot resolve the gain
                reason = StopReason.STALLED if unresolved else StopReason.NO_DESCENT
                if (done := run.done(reason)) is not None:
                    return done
                continue
            if run.accept(run.steps + 1, x, f, fam, g, length, halvings, None):
                if (done := run.done(StopReason.STALLED)) is not None:
                    return done
        return run.done(StopReason.MAX_STEPS) or run.result(run.steps, StopReason.MAX_STEPS)

    @staticmethod
    def _move(objective: SolverObjective, x: np.ndarray, f: float, g: np.ndarray,
              block: np.ndarray, reach: np.ndarray, options: CdOptions, sweep: int,
              reject: Rejected | None = None
              ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, int, float] | bool | None:
        """One colour's move: (x, F, family energies, gradient, halvings, max |move|) once it
        lowers F; None when no halving does, True when the gain left is below what F resolves
        (shorter steps would not tell either). `reject` hears of each move turned down."""
        lo, hi = objective.lower[block], objective.upper[block]
        gb = g[block]
        h = np.asarray(objective.hess_diag(x), dtype=np.float64)[block]  # type: ignore[attr-defined]
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = np.where(h > 0, -gb / h, 0.0)
        d = np.where(h > 0, newton, np.clip(-gb, -reach[block], reach[block]))
        d = np.where(np.isfinite(d), d, 0.0)
        xb = x[block]
        beta = 1.0
        for halvings in range(options.max_halvings + 1):
            step = np.clip(xb + beta * d, lo, hi) - xb
            decrease = dot(gb, step)
            if decrease >= 0.0:  # nothing left to gain along this colour's steps
                return None
            trial = x.copy()
            trial[block] = xb + step
            f_new, fam, g_new = objective.energy_and_grad(trial)
            # a move below F's resolution is kept only when F does not rise
            noise = -decrease <= 16.0 * _EPS * max(1.0, abs(f))
            if not np.isfinite(f_new) or f_new <= f + (0.0 if noise else
                                                       options.armijo_c * decrease):
                objective.check_finite(trial, f_new, g_new, sweep)
                return trial, f_new, fam, g_new, halvings, float(np.max(np.abs(step)))
            if reject is not None:
                reject(f_new, fam, float(np.max(np.abs(step))), halvings, trial)
            if noise:
                return True
            beta *= 0.5
        return None
