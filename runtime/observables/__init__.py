"""Observables: the research code's input-to-order-parameter maps, exact and seeded.

Each returns a NumPy array for `bind(data=...)` or `--data`; `lookup(name)` finds a
registered one by name for a model's `data ... from NAME(args)` (`registry.py`).
"""

from cfc_dsl.runtime.observables.game import nash_regret, regrets, symmetric_game
from cfc_dsl.runtime.observables.percolation import (
    bond_grid,
    giant_component_fraction,
    giant_component_membership,
)
from cfc_dsl.runtime.observables.registry import OBSERVABLES, Observable, lookup, names
from cfc_dsl.runtime.observables.sequence import (
    dipped_ramp,
    monotonicity_score,
    prefix_monotonicity,
    repair_gain,
)

__all__ = [
    "OBSERVABLES",
    "Observable",
    "bond_grid",
    "dipped_ramp",
    "giant_component_fraction",
    "giant_component_membership",
    "lookup",
    "monotonicity_score",
    "names",
    "nash_regret",
    "prefix_monotonicity",
    "regrets",
    "repair_gain",
    "symmetric_game",
]
