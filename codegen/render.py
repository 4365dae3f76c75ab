"""Render stage: kernel IR + target -> source text, header and cffi declarations.

Python decides everything (codegen/views.py: which values to load, which gradients are
identically zero, the printed expressions); the Jinja templates only interpolate and loop.
The header and the cdef come from one prototype template, so they cannot disagree.
`render_model` prepares the energies through codegen/prepare.py (in worker processes when
there are many), `render` takes kernel IR already lowered.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jinja2

from cfc_dsl.codegen.prepare import prepare_model
from cfc_dsl.codegen.targets import language
from cfc_dsl.codegen.viewtypes import BoundView, KernelView, views_context
from cfc_dsl.model import Model, Target

if TYPE_CHECKING:  # their modules import SymPy, which rendering stored energies must not
    from cfc_dsl.codegen.bounds import BoundKernel
    from cfc_dsl.codegen.ir import KernelModule


@dataclass(frozen=True)
class Unit:
    """One translation unit of the build: its file name, its text, and whether it needs
    -fopenmp (only the unit with the threaded drivers does)."""

    name: str
    source: str
    openmp: bool


@dataclass(frozen=True)
class RenderedSource:
    target: Target
    source: str  # the .c (or .cu) file: everything in one unit, what --emit c writes
    header: str
    cdef: str  # declarations for cffi
    units: tuple[Unit, ...] = ()  # the same kernels split for a parallel build


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """One environment per process, with the templates shipped compiled (codegen/jinja_env.py:
    compiling them cost more than rendering them); a template edited since is compiled."""
    from cfc_dsl.codegen.jinja_env import environment as shipped

    return shipped()


def render(module: KernelModule, target: Target = Target.C, model: Model | None = None,
           bounds: tuple[BoundKernel, ...] = ()) -> RenderedSource:
    from cfc_dsl.codegen.bounds import bound_view
    from cfc_dsl.codegen.views import kernel_view

    kernels = tuple(kernel_view(k, None if model is None else model.energy(k.energy))
                    for k in module.kernels)
    return render_views(module.model, module.version, kernels,
                        tuple(bound_view(b) for b in bounds), target)


def render_views(model_name: str, version: str, kernels: tuple[KernelView, ...],
                 bounds: tuple[BoundView, ...], target: Target = Target.C) -> RenderedSource:
    env = environment()
    guard = re.sub(r"[^A-Za-z0-9]", "_", model_name).upper()
    common = {"version": version, "model": model_name, "kernels": list(kernels),
              "guard": guard, "threaded": target is Target.C, **views_context(bounds, target)}
    header = env.get_template("kernels.h.j2").render(restrict="restrict ", preprocessor=True,
                                                     **common)
    cdef = env.get_template("prototypes.h.j2").render(restrict="", preprocessor=False, **common)
    if target is Target.C:
        source, units = _c_units(env, version, model_name, kernels, bounds)
    else:
        source = env.get_template(language(target).template).render(**common)
        units = (Unit(language(target).source_file, source, False),)
    return RenderedSource(target, source, header, cdef.strip() + "\n", units)


# The C kernels are split into translation units that gcc compiles at once (one per core):
# whole energies in energy order, a unit closed once it holds UNIT_BYTES of source, and never
# more than MAX_UNITS of them. The split depends on the rendered text alone (not on the
# machine), so a model always gives the same files.
UNIT_BYTES = 16_000
MAX_UNITS = 16


def split(sizes: list[int], target: int | None = None, most: int = MAX_UNITS) -> list[range]:
    """Consecutive groups of `sizes` (bytes per energy), each closed once it reaches the
    target (UNIT_BYTES, read at each call; raised to total / most, so at most `most`
    groups); a last group under a quarter of the target joins the one before."""
    target = max(UNIT_BYTES if target is None else target, -(-sum(sizes) // most))
    groups, start, size = [], 0, 0
    for i, n in enumerate(sizes):
        size += n
        if size >= target:
            groups.append(range(start, i + 1))
            start, size = i + 1, 0
    if start < len(sizes):
        if groups and size < target // 4:
            groups[-1] = range(groups[-1].start, len(sizes))
        else:
            groups.append(range(start, len(sizes)))
    return groups


def _c_units(env: jinja2.Environment, version: str, model_name: str,
             kernels: tuple[KernelView, ...], bounds: tuple[BoundView, ...]
             ) -> tuple[str, tuple[Unit, ...]]:
    """The one-file C source (the shared head, every energy with its bound, then what the
    library holds once) and the same text as units: one file while it is small, else a
    common unit (the OpenMP drivers: the only one that needs -fopenmp) and the energies."""
    paired = {b.name: b for b in bounds}
    mine = [paired.pop(f"cfc_hb_{k.energy}", None) for k in kernels]
    rest = tuple(paired.values())  # bounds passed without their kernel (render's argument)
    hb = views_context(bounds, Target.C)["hb"]
    energy, bound = env.get_template("energy.c.j2"), env.get_template("bound.c.j2")
    chunks = [energy.render(k=k, b=b, hb=hb) for k, b in zip(kernels, mine, strict=True)]
    shared = env.get_template("parallel.c.j2").render() + "".join(
        bound.render(b=b, hb=hb) for b in rest)

    def head(part: str | None, with_bounds: tuple[BoundView | None, ...]) -> str:
        return env.get_template("kernels.c.j2").render(
            version=version, model=model_name, part=part,
            **views_context(tuple(b for b in with_bounds if b is not None), Target.C))

    source = head(None, (*mine, *rest)) + "".join(chunks) + shared
    groups = split([len(c) for c in chunks])
    if len(groups) <= 1:
        return source, (Unit(language(Target.C).source_file, source, True),)
    units = [Unit("kernels_0.c", head(f"unit 0 of {len(groups) + 1}: what the library "
                                      "holds once (codegen/render.py)", rest) + shared, True)]
    for u, group in enumerate(groups, start=1):
        names = f"{kernels[group.start].energy} .. {kernels[group[-1]].energy}"
        part = f"unit {u} of {len(groups) + 1}: energies {names} (codegen/render.py)"
        units.append(Unit(f"kernels_{u}.c", head(part, tuple(mine[i] for i in group))
                          + "".join(chunks[i] for i in group), False))
    return source, tuple(units)


def render_model(model: Model, target: Target = Target.C) -> RenderedSource:
    from cfc_dsl.version import __version__

    prepared = prepare_model(model)
    return render_views(model.name, __version__, tuple(p.kernel for p in prepared),
                        tuple(p.bound for p in prepared), target)


__all__ = ["MAX_UNITS", "UNIT_BYTES", "RenderedSource", "Unit", "render", "render_model", "split"]
