"""Keys for factor-graph figures: how the legend is laid out and the solution colour scale.

The legend sits below the drawing in as many columns as fit, and drops the energy formulas
(they stay in the tooltips and the families view) when it would otherwise take more than a
quarter of the figure. The colour scale is fitted to the values drawn, and keeps the box
bounds so that the key can name them. Sizes are estimated from character counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cfc_dsl.runtime.figures.palette import VIRIDIS, viridis

LEGEND_FONT = 6.5  # points
ROW = 8.0  # points per legend row
MAX_SHARE = 0.25  # of the figure's area
CHAR = 0.58  # a Helvetica glyph's average width, in font sizes (a little generous)
STRIP_CELLS = 12


@dataclass(frozen=True)
class ColourBar:
    title: str
    low: float  # the data's range: the ends of the scale
    high: float
    colours: tuple[str, ...]  # gradient stops, evenly spaced from low to high
    bound_low: float  # the box bounds of the variables drawn
    bound_high: float


@dataclass(frozen=True)
class LegendFit:
    columns: int
    formulas: bool
    height: float  # points, estimated


def text_width(text: str, size: float = LEGEND_FONT) -> float:
    return len(text) * CHAR * size


def _entry_width(name: str, formula: str, formulas: bool) -> float:
    return 10.0 + text_width(name) + (6.0 + text_width(formula) if formulas else 0.0) + 8.0


def fit_legend(entries: list[tuple[str, str]], width: float, height: float,
               extra_rows: int = 0) -> LegendFit:
    """Columns and content for a legend of (name, formula) entries below a drawing of
    `width` x `height` points, such that it takes at most MAX_SHARE of the figure."""
    if not entries and not extra_rows:
        return LegendFit(1, True, 0.0)
    fit = LegendFit(1, False, 0.0)
    for formulas in (True, False):
        cell = max((_entry_width(n, f, formulas) for n, f in entries), default=width)
        least = max(1, min(len(entries), int(width // cell)))
        for columns in range(least, max(len(entries), 1) + 1):
            rows = math.ceil(len(entries) / columns) + extra_rows
            total = rows * ROW + 4.0
            figure_width = max(width, columns * cell)
            fit = LegendFit(columns, formulas, total)
            if total * min(figure_width, columns * cell) <= MAX_SHARE * (height + total) * figure_width:
                return fit
            if formulas:
                break  # formulas only in the columns that fit; else drop them first
    return fit


def colour_scale(arrays: list[np.ndarray]) -> tuple[float, float]:
    """The range of the values drawn; a constant state gets a unit-wide scale around it."""
    every = np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.zeros(1)
    every = every[np.isfinite(every)]
    if not every.size:
        return 0.0, 1.0
    low, high = float(every.min()), float(every.max())
    if high - low <= 1e-12 * max(1.0, abs(low)):
        return low - 0.5, low + 0.5
    return low, high


def colourbar(low: float, high: float, bounds: tuple[float, float]) -> ColourBar:
    return ColourBar("relaxed value", low, high, VIRIDIS, bounds[0], bounds[1])


def value_strip(values: np.ndarray, low: float, high: float,
                cells: int = STRIP_CELLS) -> tuple[str, ...]:
    """The array's values sorted and sampled at `cells` quantiles, as colours: a strip that
    runs from the colour of its minimum to that of its maximum (a ring half 0 and half 1
    shows half dark, half light; a mean would show one middle colour)."""
    flat = np.sort(np.ravel(values))
    if not flat.size:
        return ()
    picks = flat[np.minimum(((np.arange(cells) + 0.5) * flat.size / cells).astype(int),
                            flat.size - 1)]
    return tuple(viridis((float(v) - low) / (high - low)) for v in picks)


def number(value: float) -> str:
    """A key's number: short, and without a '-0'."""
    text = f"{value + 0.0:.3g}"
    return "0" if text == "-0" else text
