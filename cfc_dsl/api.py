"""The Python facade: `load` a .cfc model, `.compile()` it, `.bind()` data, `.relax()`.

    import cfc_dsl as cfc
    problem = cfc.load("chain.cfc").compile().bind(sizes={"N": 1000})
    result = problem.relax()

This module and the CLI are the top layer: the only code that reaches from the language
down into the runtime. The runtime is imported when first needed, so `import cfc_dsl` stays
cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import cfc_dsl.runtime  # an empty package: binds the name the return annotations spell out
from cfc_dsl import frontend
from cfc_dsl import model as language
from cfc_dsl.diagnostics import CfcError, ErrorKind

if TYPE_CHECKING:
    import polars

    import cfc_dsl.runtime.problem

_E = TypeVar("_E", bound=Enum)


@dataclass(frozen=True, repr=False)
class Model(language.Model):
    """A checked model (the language's typed `Model`) with the facade's verbs."""

    @classmethod
    def of(cls, model: language.Model) -> Model:
        if isinstance(model, cls):
            return model
        return cls(**{f.name: getattr(model, f.name) for f in fields(language.Model)})

    # Spelt in full so `typing.get_type_hints` resolves it once the runtime is loaded (as it is
    # whenever a CompiledModel exists) without `import cfc_dsl` loading the runtime.
    def compile(self, target: str = "c",
                backend: str = "auto") -> cfc_dsl.runtime.problem.CompiledModel:
        """Build (or fetch from the cache) the kernels; returns a `CompiledModel` to `.bind()`.

        `target` is "c" or "cuda"; `backend` is "auto" (C when a compiler exists, else the
        NumPy reference), "c", "python" or "cuda".
        """
        from cfc_dsl.runtime.backends.native import BackendKind
        from cfc_dsl.runtime.problem import compile_model

        return compile_model(self, _choice(language.Target, target, "target"),
                             _choice(BackendKind, backend, "backend"))

    def __repr__(self) -> str:
        count = len(self.families)
        return (f"<cfc.Model {self.name!r} from {self.source.name}: {len(self.variables)} "
                f"variable declaration(s), {count} factor {'family' if count == 1 else 'families'}>")

    def _repr_svg_(self) -> str | None:
        """Jupyter shows a model as its plate-notation factor graph (needs graphviz's dot)."""
        from cfc_dsl.runtime.figures.output import repr_svg

        return repr_svg(self)


def load(path: str | Path) -> Model:
    """Parse and check a .cfc file; returns a `Model` ready to `.compile()`."""
    return Model.of(frontend.load_file(path))


def loads(text: str, name: str = "<string>") -> Model:
    """Parse and check .cfc source text; `name` is what error messages call it."""
    return Model.of(frontend.load_source(text, name))


def _choice(enum: type[_E], value: _E | str, what: str) -> _E:
    if isinstance(value, enum):
        return value
    try:
        return enum(value)
    except ValueError:
        names = ", ".join(repr(e.value) for e in enum)
        raise CfcError(ErrorKind.ARGUMENT, f"unknown {what} {value!r}", None,
                       f"choose one of {names}") from None


def sweep(model: str | Path | language.Model, grid: Mapping[str, Any],
          seeds: int | Sequence[int] = 1, *, data: Mapping[str, Any] | None = None, settings: Mapping[str, float] | None = None,
          solver: str = "auto", max_steps: int = 1000, tol: float = 1e-8, backend: str = "auto",
          observe: Sequence[str] = (), workers: int = 2, scheduler: str | None = None,
          output: str | Path | None = None, resume: bool = False) -> polars.DataFrame:
    """Relax `model` at every grid point x seed as Dask tasks; returns a polars DataFrame.

        cfc.sweep("chain.cfc", {"a": "-1:1:21", "N": [64, 256]}, seeds=10, observe=["eta:mean"])

    `grid` maps a size, param or weight.FAMILY to "lo:hi:num", "v1,v2" or numbers; `data`
    maps a data name to an array, a path (with `{seed}` substituted) or a function of the
    seed. `workers=0` runs serially here; `scheduler` names an existing Dask cluster.
    `output` writes Parquet with provenance; `resume` skips points already in it.
    """
    from cfc_dsl.runtime.sweep.engine import make, run
    from cfc_dsl.runtime.sweep.grid import Observation, parse_seeds
    from cfc_dsl.runtime.sweep.task import Relax

    checked = model if isinstance(model, language.Model) else frontend.load_file(model)
    spec = make(checked, grid, parse_seeds(seeds, "seeds"),
                relax=Relax(solver, max_steps, tol, backend),
                settings=tuple((k, float(v)) for k, v in (settings or {}).items()),
                data=tuple((data or {}).items()),
                observe=tuple(Observation.parse(o, "observe") for o in observe))
    return run(spec, workers=workers, scheduler=scheduler,
               output=None if output is None else Path(output), resume=resume)
