"""`cfc plot`: trace and sweep figures really render, show the trace's own numbers, and are
byte-identical across renders. The oracle for every line is the CSV read back with polars,
not the plotting code's own column handling.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cfc_dsl.cli.main import main

pytest.importorskip("matplotlib")
from cfc_dsl.runtime.observe import plots  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("traces")
    out = {}
    for name in ("chain", "sequence_redemption"):
        path = folder / f"{name}.csv"
        assert main(["run", str(ROOT / "examples" / f"{name}.cfc"), "--backend", "python",
                     "--trace", str(path)]) == 0
        out[name] = path
    # the columns the reworked solvers add: homotopy stages, per-family gradient norms
    frame = pl.read_csv(out["sequence_redemption"])
    # a written trace has real per-family gradient norms; these tests use made-up ones
    frame = frame.drop([c for c in frame.columns if c.startswith("grad_norm.")])
    n = frame.height
    rich = frame.with_columns(
        pl.Series("stage", [0] * (n // 3) + [1] * (n // 3) + [2] * (n - 2 * (n // 3))),
        pl.Series("grad_norm.local", frame["grad_norm"] * 0.5),
        pl.Series("grad_norm.open", frame["grad_norm"] * 0.25))
    out["rich"] = folder / "rich.csv"
    rich.write_csv(out["rich"])
    return out


def lines(figure, prefix: str):  # type: ignore[no-untyped-def]
    return [line for ax in figure.axes for line in ax.get_lines()
            if (line.get_gid() or "").startswith(prefix)]


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == PNG
    return struct.unpack(">II", head[16:24])


def test_png_renders_at_the_figure_size(traces: dict[str, Path], tmp_path: Path) -> None:
    table = plots.read_table(traces["chain"])
    figure = plots.trace_figure([table])
    out = tmp_path / "chain.png"
    plots.save_figure(figure, out, "png")
    width, height = figure.get_size_inches()
    assert width == pytest.approx(3.3)
    assert png_size(out) == (round(width * plots.DPI), round(height * plots.DPI))


def test_axes_show_the_trace_columns(traces: dict[str, Path]) -> None:
    frame = pl.read_csv(traces["sequence_redemption"])
    figure = plots.trace_figure([plots.read_table(traces["sequence_redemption"])])
    step, energy = frame["step"].to_numpy(), frame["energy"].to_numpy()
    (gap,) = lines(figure, "gap:")
    np.testing.assert_array_equal(gap.get_xdata(), step)
    expected = energy - energy[-1]
    np.testing.assert_allclose(gap.get_ydata(), np.where(expected > 0, expected, np.nan))
    (grad,) = lines(figure, "grad_norm:")
    np.testing.assert_array_equal(grad.get_ydata(), frame["grad_norm"].to_numpy())
    (size,) = lines(figure, "step_size:")
    sizes = frame["step_size"].to_numpy()
    np.testing.assert_array_equal(size.get_ydata(), np.where(sizes > 0, sizes, np.nan))
    (total,) = lines(figure, "total:")
    np.testing.assert_allclose(total.get_ydata(), energy - energy[0])
    # ΔF90 by DESIGN §5, counted here from the energies: F0 - Ft >= 0.9 (F0 - F_final)
    drop = energy[0] - energy[-1]
    k = next(t for t, f in enumerate(energy) if energy[0] - f >= 0.9 * drop - 1e-15)
    (mark,) = lines(figure, "df90:")
    assert mark.get_xdata()[0] == step[k]
    # the stack holds one area per family that moves, above or below zero
    moving = [c for c in frame.columns if c.startswith("energy_")
              and np.ptp(frame[c].to_numpy()) > 0]
    stacks = [c for ax in figure.axes for c in ax.collections
              if (c.get_gid() or "").startswith("stack")]
    assert len(stacks) in (len(moving), 2 * len(moving))
    assert figure.axes[0].get_yscale() == "log"


def test_the_same_trace_gives_the_same_bytes(traces: dict[str, Path], tmp_path: Path) -> None:
    table = plots.read_table(traces["rich"])
    for fmt in plots.FORMATS:
        paths = [tmp_path / f"{k}.{fmt}" for k in range(2)]
        for path in paths:
            plots.save_figure(plots.trace_figure([table], plots.Width.DOUBLE), path, fmt)
        assert paths[0].read_bytes() == paths[1].read_bytes(), fmt
        assert b"Matplotlib v" not in paths[0].read_bytes()


def test_several_traces_one_line_each(traces: dict[str, Path]) -> None:
    tables = [plots.read_table(traces[n]) for n in ("chain", "sequence_redemption")]
    figure = plots.trace_figure(tables)
    gaps = lines(figure, "gap:")
    assert [g.get_gid() for g in gaps] == ["gap:chain", "gap:sequence_redemption"]
    assert len({g.get_color() for g in gaps}) == 2
    assert len(lines(figure, "grad_norm:")) == 2
    assert len(lines(figure, "total:")) == 2  # one family panel per trace
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert legend[0].startswith("chain") and legend[1].startswith("sequence_redemption")


def test_new_columns_add_panels(traces: dict[str, Path]) -> None:
    figure = plots.trace_figure([plots.read_table(traces["rich"])])
    frame = pl.read_csv(traces["rich"])
    family = {line.get_gid(): line for line in lines(figure, "grad_norm.")}
    assert set(family) == {"grad_norm.local:rich", "grad_norm.open:rich"}
    np.testing.assert_array_equal(family["grad_norm.open:rich"].get_ydata(),
                                  frame["grad_norm.open"].to_numpy())
    shaded = [p for ax in figure.axes for p in ax.patches
              if (p.get_gid() or "").startswith("stage:")]
    assert {p.get_gid() for p in shaded} == {"stage:1"}
    assert len(shaded) == len(figure.axes)  # every panel shades the middle stage


def test_sweep_table_mean_and_band(tmp_path: Path) -> None:
    rows = [{"N": n, "seed": s, "solver": solver, "energy": -n * (1 + 0.1 * s) * k}
            for k, solver in enumerate(("apg", "pgd"), start=1)
            for n in (8, 16, 32) for s in range(3)]
    path = tmp_path / "sweep.parquet"
    pl.DataFrame(rows).write_parquet(path)
    figure = plots.sweep_figure([plots.read_table(path)], "N", "energy", "solver")
    means = {line.get_gid(): line for line in lines(figure, "mean:")}
    assert set(means) == {"mean:apg", "mean:pgd"}
    np.testing.assert_array_equal(means["mean:pgd"].get_xdata(), [8, 16, 32])
    np.testing.assert_allclose(means["mean:pgd"].get_ydata(),
                               [-2 * n * 1.1 for n in (8, 16, 32)])
    (band,) = [c for c in figure.axes[0].collections if c.get_gid() == "band:pgd"]
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(-2 * 32 * 1.2) and ys.max() == pytest.approx(-2 * 8)
    out = tmp_path / "sweep.png"
    assert main(["plot", str(path), "-o", str(out), "--x", "N", "--hue", "solver"]) == 0
    assert out.read_bytes()[:8] == PNG


def test_cli_draws_every_format(traces: dict[str, Path], tmp_path: Path) -> None:
    for suffix in (".png", ".pdf", ".svg"):
        out = tmp_path / f"fig{suffix}"
        assert main(["plot", str(traces["chain"]), str(traces["rich"]), "-o", str(out),
                     "--width", "double"]) == 0
        assert out.stat().st_size > 1000


def test_cli_names_a_missing_column(traces: dict[str, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.png"
    assert main(["plot", str(traces["chain"]), "-o", str(out), "--x", "seeds"]) == 2
    err = capsys.readouterr().err
    assert "no column 'seeds'" in err and "its columns are: step, energy" in err
    assert "Traceback" not in err and not out.exists()


def test_cli_errors_on_files(traces: dict[str, Path], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot", str(tmp_path / "none.csv"), "-o", str(tmp_path / "x.png")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["plot", str(traces["chain"]), "-o", str(tmp_path / "x.jpg")]) == 2
    assert ".png, .pdf or .svg" in capsys.readouterr().err
    before = traces["chain"].read_bytes()
    assert main(["plot", str(traces["chain"]), "-o", str(traces["chain"])]) == 2
    assert traces["chain"].read_bytes() == before


def test_other_commands_never_import_matplotlib() -> None:
    code = ("import sys; from cfc_dsl.cli.main import build_parser; build_parser(); "
            "assert 'matplotlib' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
