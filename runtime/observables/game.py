"""The 2x2 game's order parameter: each player's regret against the other's mixed strategy.

The research code (SEED_SPEC 2.5, 8 item 18) scored the column player with the row player's
matrix indexed the row player's way, so the column player maximised the row player's payoff
and learning ended at (Defect, Cooperate). Here a game is a pair of payoff matrices indexed
[row action, column action]; in a symmetric game the column player's matrix is A transposed.
"""

from __future__ import annotations

import numpy as np

from cfc_dsl.runtime.observables.registry import observable


def symmetric_game(T: float = 5.0, R: float = 3.0, P: float = 1.0,
                   S: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(row payoffs A, column payoffs B = A.T), actions 0 = Cooperate, 1 = Defect."""
    A = np.array([[R, S], [T, P]], dtype=np.float64)
    return A, A.T.copy()


def regrets(A: np.ndarray, B: np.ndarray, p_row: float, p_col: float) -> np.ndarray:
    """[row regret, column regret]: best pure payoff minus the mixed payoff, each player
    against the other's mix (p = probability of action 1, Defect)."""
    row_mix = np.array([1.0 - p_row, p_row])
    col_mix = np.array([1.0 - p_col, p_col])
    row_payoffs = A @ col_mix  # the row player's payoff for each of its actions
    col_payoffs = row_mix @ B  # the column player's payoff for each of its actions
    return np.array([max(0.0, row_payoffs.max() - row_mix @ row_payoffs),
                     max(0.0, col_payoffs.max() - col_mix @ col_payoffs)])


@observable
def nash_regret(*, p_row: float = 0.5, p_col: float = 0.5, T: float = 5.0, R: float = 3.0,
                P: float = 1.0, S: float = 0.0) -> np.ndarray:
    """[row regret, column regret] of a symmetric 2x2 game (default: the Prisoner's Dilemma)."""
    A, B = symmetric_game(T, R, P, S)
    return regrets(A, B, p_row, p_col)


@observable
def nash_order(*, p_row: float = 0.5, p_col: float = 0.5, T: float = 5.0, R: float = 3.0,
               P: float = 1.0, S: float = 0.0) -> np.ndarray:
    """[row, column] order eta = 1 - min(1, regret / payoff spread); 1 at a Nash equilibrium."""
    A, B = symmetric_game(T, R, P, S)
    spread = float(A.max() - A.min())
    if spread <= 0:
        return np.ones(2)
    return 1.0 - np.minimum(1.0, regrets(A, B, p_row, p_col) / spread)
