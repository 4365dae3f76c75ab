"""Write examples/grid_shortcuts.npy: seeded random shortcut edges for grid_percolation.cfc.

    python examples/make_grid_shortcuts.py --size 16 --count 24 --seed 1337
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def shortcuts(size: int, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cells = size * size
    pairs = set()
    while len(pairs) < count:
        a, b = (int(v) for v in rng.integers(0, cells, size=2))
        if a != b:
            pairs.add((min(a, b), max(a, b)))
    return np.array(sorted(pairs), dtype=np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--out", default=str(Path(__file__).with_name("grid_shortcuts.npy")))
    args = parser.parse_args()
    np.save(args.out, shortcuts(args.size, args.count, args.seed))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
