"""Observables against independent computations: brute-force pair counts, union-find and
hand-made grids for percolation, brute-force best responses for the 2x2 game; and the
registry's lookup and argument checks."""

from __future__ import annotations

import itertools
import random

import networkx as nx
import numpy as np
import pytest

from cfc_dsl.diagnostics import CfcError
from cfc_dsl.runtime import observables as obs


# ---------------------------------------------------------------- sequences
def brute_score(v: np.ndarray) -> float:
    pairs = [(i, j) for i in range(len(v)) for j in range(i + 1, len(v))]
    return sum(v[i] <= v[j] for i, j in pairs) / len(pairs)


@pytest.mark.parametrize("seed", range(6))
def test_prefix_scores_equal_brute_force_pair_counts(seed: int) -> None:
    rng = np.random.default_rng(seed)
    v = rng.integers(0, 5, 40).astype(float) if seed % 2 else rng.normal(size=40)  # ties too
    scores = obs.prefix_monotonicity(v)
    assert scores[0] == 1.0
    for j in range(1, len(v)):
        assert scores[j] == pytest.approx(brute_score(v[: j + 1]), abs=1e-15)


def test_score_extremes() -> None:
    assert obs.monotonicity_score(np.arange(10.0)) == 1.0
    assert obs.monotonicity_score(np.arange(10.0)[::-1]) == 0.0
    assert obs.monotonicity_score(np.ones(5)) == 1.0  # ties count as ordered (v[i] <= v[j])


def test_repair_gain_is_exact_and_seeded() -> None:
    v = obs.dipped_ramp(64, -0.5, 20, 0.01, seed=42)
    assert np.array_equal(v, obs.dipped_ramp(64, -0.5, 20, 0.01, seed=42))
    fixed = v.copy()
    fixed[20] = fixed[19]
    assert obs.repair_gain(v, 20) == pytest.approx(brute_score(fixed) - brute_score(v), abs=1e-15)
    assert obs.repair_gain(v, 20) > 0  # lifting the dip orders the sequence
    half = v.copy()
    half[20] = 0.5 * v[20] + 0.5 * v[19]
    assert obs.repair_gain(v, 20, eta=0.5) == pytest.approx(brute_score(half) - brute_score(v))
    gain = obs.lookup("sequence_repair_gain").call(seed=42)
    assert gain.shape == () and float(gain) == obs.repair_gain(v, 20)


# ---------------------------------------------------------------- percolation
def union_find_fraction(n: int, edges: list[tuple[int, int]]) -> tuple[float, set[int]]:
    parent = list(range(n * n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in edges:
        parent[find(a)] = find(b)
    groups: dict[int, set[int]] = {}
    for c in range(n * n):
        groups.setdefault(find(c), set()).add(c)
    best = max(groups.values(), key=lambda g: (len(g), -min(g)))
    return len(best) / (n * n), best


def test_hand_made_grid() -> None:
    # 3 x 3 cells 0..8; bonds join 0-1-2-5 and 6-7; 3, 4, 8 stay alone
    g = nx.Graph()
    g.add_nodes_from(range(9))
    g.add_edges_from([(0, 1), (1, 2), (2, 5), (6, 7)])
    assert obs.giant_component_fraction(g) == pytest.approx(4 / 9)
    assert obs.giant_component_membership(g).tolist() == [1, 1, 1, 0, 0, 1, 0, 0, 0]
    g.add_edges_from([(6, 3), (3, 4)])  # now two components of 4: the one with cell 0 wins
    assert obs.giant_component_membership(g).tolist() == [1, 1, 1, 0, 0, 1, 0, 0, 0]


def test_full_and_empty_grids() -> None:
    assert obs.giant_component_fraction(obs.bond_grid(5, 1.0)) == 1.0
    assert obs.bond_grid(5, 1.0).number_of_edges() == 2 * 5 * 4
    assert obs.giant_component_fraction(obs.bond_grid(5, 0.0)) == pytest.approx(1 / 25)


@pytest.mark.parametrize("seed,shortcuts", [(0, 0.0), (1, 0.0), (2, 0.1), (3, 0.2)])
def test_bond_grid_against_union_find(seed: int, shortcuts: float) -> None:
    n, p = 8, 0.5
    rng = random.Random(seed)  # the same draws, replayed independently of NetworkX
    edges = []
    for i, j in itertools.product(range(n), range(n)):
        for k, m in ((i + 1, j), (i, j + 1)):  # grid_2d_graph's edge order per cell
            if k < n and m < n and rng.random() <= p:
                edges.append((i * n + j, k * n + m))
    for _ in range(int(shortcuts * len(set(edges)))):
        a, b = rng.randrange(n * n), rng.randrange(n * n)
        if a != b:
            edges.append((a, b))
    fraction, giant = union_find_fraction(n, edges)
    graph = obs.bond_grid(n, p, shortcuts, seed)
    assert obs.giant_component_fraction(graph) == pytest.approx(fraction)
    assert set(np.flatnonzero(obs.giant_component_membership(graph))) == giant
    member = obs.lookup("percolation_membership").call(n=n, p=p, shortcut_frac=shortcuts, seed=seed)
    assert member.shape == (n, n) and set(np.flatnonzero(member)) == giant
    bonds = obs.lookup("percolation_bonds").call(n=n, p=p, shortcut_frac=shortcuts, seed=seed)
    assert bonds.dtype == np.int64 and {tuple(e) for e in bonds} == \
        {(min(a, b), max(a, b)) for a, b in edges}


# ---------------------------------------------------------------- the 2x2 game
# Prisoner's Dilemma told as a story: payoffs (row, column) for (row action, column action)
STORY = {("C", "C"): (3, 3), ("C", "D"): (0, 5), ("D", "C"): (5, 0), ("D", "D"): (1, 1)}


def expected(player: int, mine: dict[str, float], theirs: dict[str, float]) -> float:
    """`player`'s (0 row, 1 column) expected payoff, summed over every joint outcome."""
    total = 0.0
    for a, b in itertools.product("CD", "CD"):
        profile = (a, b) if player == 0 else (b, a)
        total += mine[a] * theirs[b] * STORY[profile][player]
    return total


def brute_regret(p_row: float, p_col: float) -> list[float]:
    mixes = ({"C": 1 - p_row, "D": p_row}, {"C": 1 - p_col, "D": p_col})
    out = []
    for player in (0, 1):
        mine, theirs = mixes[player], mixes[1 - player]
        best = max(expected(player, {"C": 1.0, "D": 0.0}, theirs),
                   expected(player, {"C": 0.0, "D": 1.0}, theirs))
        out.append(max(0.0, best - expected(player, mine, theirs)))
    return out


@pytest.mark.parametrize("p_row,p_col", [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0),
                                         (0.3, 0.8), (0.9, 0.1), (0.5, 0.5)])
def test_regret_against_brute_force_best_responses(p_row: float, p_col: float) -> None:
    got = obs.lookup("nash_regret").call(p_row=p_row, p_col=p_col)
    assert got == pytest.approx(brute_regret(p_row, p_col), abs=1e-12)


def test_defect_defect_is_the_only_pure_equilibrium() -> None:
    zero = [(r, c) for r, c in itertools.product((0.0, 1.0), repeat=2)
            if np.all(obs.lookup("nash_regret").call(p_row=r, p_col=c) == 0)]
    assert zero == [(1.0, 1.0)]  # the research code's transposed payoff found (1, 0)
    assert obs.lookup("nash_order").call(p_row=1, p_col=1).tolist() == [1.0, 1.0]


# ---------------------------------------------------------------- the registry
def test_lookup_suggests_a_close_name() -> None:
    with pytest.raises(CfcError, match="unknown observable") as err:
        obs.lookup("sequence_monotonicty")
    assert "did you mean 'sequence_monotonicity'" in str(err.value)


def test_call_checks_names_and_literal_types() -> None:
    seq = obs.lookup("sequence_monotonicity")
    with pytest.raises(CfcError, match="has no argument 'sed'") as err:
        seq.call(sed=1)
    assert "did you mean 'seed'" in str(err.value)
    with pytest.raises(CfcError, match="takes a int"):
        seq.call(seed=1.5)
    with pytest.raises(CfcError, match="takes a int"):
        seq.call(seed=True)
    assert seq.call(dip=-1).shape == (64,)  # an int literal is a fine float


def test_every_observable_is_documented_and_deterministic() -> None:
    for name in obs.names():
        o = obs.lookup(name)
        assert o.summary and all(p.type in (int, float, bool, str) for p in o.parameters)
        small = {k: v for k, v in {"n": 6, "position": 2}.items()
                 if k in {p.name for p in o.parameters}}
        assert np.array_equal(o.call(**small), o.call(**small))
    with pytest.raises(CfcError, match="position < n") as err:
        obs.lookup("sequence_values").call(n=6)
    assert "sequence_values(n = 64" in str(err.value)
