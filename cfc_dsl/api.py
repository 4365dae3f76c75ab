"""The Python facade: `load` a .cfc model, `.compile()` it, `.bind()` data, `.relax()`.

    import cfc_dsl as cfc
    problem = cfc.load("chain.cfc").compile().bind(sizes={"N": 1000})
    result = problem.relax()

This module and the CLI are the top layer: the only code that reaches from the language
down into the runtime. The runtime is imported when first needed, so `import cfc_dsl` stays
cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from cfc_dsl import frontend
from cfc_dsl import model as language

if TYPE_CHECKING:
    from cfc_dsl.runtime.problem import CompiledModel


@dataclass(frozen=True, repr=False)
class Model(language.Model):
    """A checked model (the language's typed `Model`) with the facade's verbs."""

    @classmethod
    def of(cls, model: language.Model) -> Model:
        if isinstance(model, cls):
            return model
        return cls(**{f.name: getattr(model, f.name) for f in fields(language.Model)})

    def compile(self, target: str = "c", backend: str = "auto") -> CompiledModel:
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


def _choice(enum, value, what):  # type: ignore[no-untyped-def]
    from cfc_dsl.diagnostics import CfcError, ErrorKind

    if isinstance(value, enum):
        return value
    try:
        return enum(value)
    except ValueError:
        names = ", ".join(repr(e.value) for e in enum)
        raise CfcError(ErrorKind.ARGUMENT, f"unknown {what} {value!r}", None,
                       f"choose one of {names}") from None
