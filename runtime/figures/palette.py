"""Colours for factor-graph figures: a colour-blind-safe palette for families, viridis for
values, and the small conversions the renderers need (tints, shades, readable text)."""

from __future__ import annotations

import math

# Okabe & Ito (2008), ordered so that neighbouring families differ in hue and lightness;
# yellow comes late because a small yellow square is hard to see on white.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000")
# viridis (van der Walt & Smith), sampled at nine points: perceptually uniform and readable
# with every common colour-vision deficiency and in greyscale
VIRIDIS = ("#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962",
           "#addc30", "#fde725")
INK = "#333333"  # outlines and text: softer than black, still high contrast


def family_colours(names: list[str]) -> dict[str, str]:
    return {name: PALETTE[k % len(PALETTE)] for k, name in enumerate(names)}


def viridis(t: float) -> str:
    t = min(max(float(t), 0.0), 1.0) * (len(VIRIDIS) - 1)
    k = min(int(math.floor(t)), len(VIRIDIS) - 2)
    a, b = _rgb(VIRIDIS[k]), _rgb(VIRIDIS[k + 1])
    mix = [round(a[c] + (b[c] - a[c]) * (t - k)) for c in range(3)]
    return "#" + "".join(f"{v:02x}" for v in mix)


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def tint(colour: str, amount: float = 0.78) -> str:
    """`colour` mixed with white; light enough for black text on top."""
    r, g, b = _rgb(colour)
    return "#" + "".join(f"{round(c + (255 - c) * amount):02x}" for c in (r, g, b))


def shade(colour: str, amount: float = 0.3) -> str:
    """`colour` darkened when it is too light to read as a thin line on white (yellow)."""
    r, g, b = _rgb(colour)
    if 0.299 * r + 0.587 * g + 0.114 * b < 170:
        return colour
    return "#" + "".join(f"{round(c * (1 - amount)):02x}" for c in (r, g, b))


def text_on(colour: str) -> str:
    r, g, b = _rgb(colour)
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#ffffff"
