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
from importlib import resources

import jinja2
import sympy as sp

from cfc_dsl.codegen.bounds import BoundKernel, BoundView, bound_view, views_context
from cfc_dsl.codegen.ir import KernelModule
from cfc_dsl.codegen.prepare import prepare_model
from cfc_dsl.codegen.targets import language
from cfc_dsl.codegen.views import KernelView, kernel_view
from cfc_dsl.model import Model, Target


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
    """One environment per process: Jinja caches each compiled template in it, and
    compiling the templates costs more than rendering them."""
    folder = resources.files("cfc_dsl.templates")
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: folder.joinpath(name).read_text("utf-8")),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False,
    )


def render(module: KernelModule, target: Target = Target.C, model: Model | None = None,
           bounds: tuple[BoundKernel, ...] = ()) -> RenderedSource:
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
    source = env.get_template(language(target).template).render(**common)
    header = env.get_template("kernels.h.j2").render(restrict="restrict ", preprocessor=True,
                                                     **common)
    cdef = env.get_template("prototypes.h.j2").render(restrict="", preprocessor=False, **common)
    units = (Unit(language(target).source_file, source, target is Target.C),)
    return RenderedSource(target, source, header, cdef.strip() + "\n", units)


def render_model(model: Model, target: Target = Target.C) -> RenderedSource:
    from cfc_dsl.version import __version__

    prepared = prepare_model(model)
    return render_views(model.name, __version__, tuple(p.kernel for p in prepared),
                        tuple(p.bound for p in prepared), target)


__all__ = ["RenderedSource", "Unit", "render", "render_model", "sp"]
