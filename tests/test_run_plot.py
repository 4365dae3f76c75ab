"""`cfc run --plot`: the run's own trace drawn as `cfc plot` draws a trace file. The PNG
really renders (header and pixel size), and the figure's lines carry the numbers of the
trace the same run wrote with --trace, read back with polars (the oracle)."""

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
MODEL = str(ROOT / "examples" / "sequence_redemption.cfc")


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """(figure, png path, trace path) of one run; save_figure is wrapped to keep the figure."""
    folder = tmp_path_factory.mktemp("run_plot")
    png, trace = folder / "fig.png", folder / "trace.csv"
    kept = []
    original = plots.save_figure

    def keep(figure, path, fmt):  # type: ignore[no-untyped-def]
        kept.append(figure)
        original(figure, path, fmt)

    plots.save_figure = keep
    try:
        assert main(["run", MODEL, "--backend", "python", "--solver", "pgd", "--quiet",
                     "--trace", str(trace), "--plot", str(png)]) == 0
    finally:
        plots.save_figure = original
    (figure,) = kept
    return figure, png, trace


def lines(figure, prefix: str):  # type: ignore[no-untyped-def]
    return [line for ax in figure.axes for line in ax.get_lines()
            if (line.get_gid() or "").startswith(prefix)]


def test_the_png_renders_at_the_figure_size(drawn) -> None:  # type: ignore[no-untyped-def]
    figure, png, _ = drawn
    head = png.read_bytes()[:24]
    assert head[:8] == PNG
    width, height = figure.get_size_inches()
    assert struct.unpack(">II", head[16:24]) == (round(width * plots.DPI),
                                                 round(height * plots.DPI))


def test_the_axes_show_the_runs_trace(drawn) -> None:  # type: ignore[no-untyped-def]
    figure, _, trace = drawn
    frame = pl.read_csv(trace)
    step, energy = frame["step"].to_numpy(), frame["energy"].to_numpy()
    (gap,) = lines(figure, "gap:")
    np.testing.assert_array_equal(gap.get_xdata(), step)
    expected = energy - energy[-1]
    np.testing.assert_allclose(gap.get_ydata(), np.where(expected > 0, expected, np.nan))
    (grad,) = lines(figure, "grad_norm:")
    np.testing.assert_array_equal(grad.get_ydata(), frame["grad_norm"].to_numpy())
    (total,) = lines(figure, "total:")
    np.testing.assert_allclose(total.get_ydata(), energy - energy[0])
    # the per-family gradient norms a --trace run records get their own panel
    family = {line.get_gid().partition(":")[0]: line for line in lines(figure, "grad_norm.")}
    assert family and set(family) <= {c for c in frame.columns if c.startswith("grad_norm.")}
    for name, line in family.items():
        values = frame[name].to_numpy()
        np.testing.assert_allclose(line.get_ydata(), np.where(values > 0, values, np.nan))
    drop = energy[0] - energy[-1]
    k = next(t for t, f in enumerate(energy) if energy[0] - f >= 0.9 * drop - 1e-15)
    (mark,) = lines(figure, "df90:")
    assert mark.get_xdata()[0] == step[k]


def test_plot_refuses_a_bad_name_before_running(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", MODEL, "--backend", "python", "--plot", str(tmp_path / "f.jpg")]) == 2
    assert "cannot draw a plot as '.jpg'" in capsys.readouterr().err
    same = str(tmp_path / "t.csv")
    assert main(["run", MODEL, "--backend", "python", "--trace", same, "--plot", same]) == 2
    assert "--plot" in capsys.readouterr().err
    assert not (tmp_path / "t.csv").exists()


def test_a_run_without_plot_never_imports_matplotlib(tmp_path: Path) -> None:
    code = ("import sys; from cfc_dsl.cli.main import main; "
            f"assert main(['run', {MODEL!r}, '--backend', 'python', '--quiet']) == 0; "
            "assert 'matplotlib' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
