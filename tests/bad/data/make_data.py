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
    # integer data beyond int64 (it used to wrap around to -1), and files that only look right
    np.save(HERE / "edges_uint64_huge.npy", np.array([[0, 1], [1, 2**64 - 1]], dtype=np.uint64))
    (HERE / "edges_not_npy.npy").write_text("0,1\n1,2\n")
    (HERE / "edges_semicolons.csv").write_text("0;1\n1;2\n2;3\n")
    (HERE / "edges_trailing_comma.csv").write_text("0,1,\n1,2,\n2,3,\n")
    (HERE / "edges_empty.csv").write_text("")
    # a typo in the first row: it is data with an error, not a header to skip
    (HERE / "edges_typo_first_row.csv").write_text("0,1x\n1,2\n2,3\n")
    # point files: a value outside the bounds, a boolean, a key given twice
    (HERE / "point_outside_bounds.json").write_text('{\n  "eta": [0.1, 0.2, 1.5, 0.4]\n}\n')
    (HERE / "point_bool.json").write_text('{"eta": [0.1, true, 0.3, 0.4]}\n')
    (HERE / "point_duplicate.json").write_text(
        '{"eta": [0.1, 0.2, 0.3, 0.4],\n "eta": [0.5, 0.5, 0.5, 0.5]}\n')

    # point files past the JSON limits: nested too deeply, a 5,000-digit number
    (HERE / "point_deep.json").write_text('{"eta": ' + "[" * 70 + "]" * 70 + "}\n")
    (HERE / "point_long_number.json").write_text('{"eta": ' + "1" * 5000 + "}\n")
    # a 150-byte .npy whose header claims 10**12 float64 elements (8 TB) and holds none
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1))
    header["shape"] = (10**12,)
    with open(HERE / "score_huge_header.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 22)


if __name__ == "__main__":
    main()
