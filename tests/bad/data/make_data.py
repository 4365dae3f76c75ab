"""Write the small data files that the bad-input cases in tests/bad/ read.

Run from anywhere: python tests/bad/data/make_data.py. The files are committed, so this
only needs rerunning when a case needs new data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    # integer edge lists for `data edges[M, 2] : int`
    np.save(HERE / "edges_ok.npy", np.array([[0, 1], [1, 2], [2, 3]], dtype=np.int64))
    np.save(HERE / "edges_out_of_range.npy", np.array([[0, 1], [1, 2], [2, 9]], dtype=np.int64))
    np.save(HERE / "edges_float.npy", np.array([[0.0, 1.0], [1.0, 2.5]]))
    np.save(HERE / "edges_1d.npy", np.array([0, 1, 2], dtype=np.int64))
    # real data for `data score[N]`
    np.save(HERE / "score_5.npy", np.linspace(0.0, 1.0, 5))
    (HERE / "score_ragged.csv").write_text("score,extra\n0.1,0.2\n0.3\n0.5,0.6\n")
    (HERE / "score_8.txt").write_text("0 1 2 3 4 5 6 7\n")
    # an --init point file that names a variable the model does not have
    (HERE / "point_unknown.json").write_text('{"etta": [0.1, 0.2, 0.3, 0.4]}\n')


if __name__ == "__main__":
    main()
