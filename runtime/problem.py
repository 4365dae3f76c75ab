"""The user-facing runtime objects: a compiled model, and a bound problem to evaluate/relax.

    compiled = compile_model(model)            # kernels from the cache, or the Python backend
    problem = compiled.bind(sizes={"N": 1000})  # instance tables
    result = problem.relax()                   # monotone, with a trace and a stop reason
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.frozen import frozen
from cfc_dsl.model import Model, Target
from cfc_dsl.runtime.backends.native import (
    Backend,
    BackendKind,
    CBackend,
    PythonBackend,
    bound_weights,
)
from cfc_dsl.runtime.bind.data import PointValues
from cfc_dsl.runtime.bind.tables import BoundModel, DataInput, Setting, bind
from cfc_dsl.runtime.build.pipeline import BuildInfo, CompiledKernels, build
from cfc_dsl.runtime.build.toolchain import find_compiler
from cfc_dsl.runtime.objective import FamilyEvaluation, Objective
from cfc_dsl.runtime.relaxation import Evaluation, Relaxation
from cfc_dsl.runtime.solvers import registry
from cfc_dsl.runtime.solvers.base import Progress
from cfc_dsl.runtime.solvers.registry import Needs


@frozen
class CompiledModel:
    model: Model
    kernels: CompiledKernels | None  # None: the Python reference backend is used
    notice: str = ""  # said once to the user, e.g. why the Python backend is in use
    cuda: bool = False  # `kernels` were built by nvcc and run on the GPU

    def __repr__(self) -> str:
        cache = "" if self.info is None else (", cache hit" if self.info.cache_hit else ", built")
        return f"<cfc.CompiledModel {self.model.name!r}: backend {self.backend_kind.value}{cache}>"

    @property
    def backend_kind(self) -> BackendKind:
        if self.cuda:
            return BackendKind.CUDA
        return BackendKind.C if self.kernels else BackendKind.PYTHON

    @property
    def info(self) -> BuildInfo | None:
        return self.kernels.info if self.kernels else None

    def bind(self, sizes: Mapping[str, int] | None = None, params: Mapping[str, float] | None = None,
             weights: Mapping[str, float] | None = None,
             data: Mapping[str, np.ndarray | str | Path] | None = None,
             init: Mapping[str, Any] | None = None, settings: tuple[Setting, ...] = (),
             data_inputs: tuple[DataInput, ...] = (), threads: int | None = None,
             reorder: str | None = None) -> Problem:
        sets = list(settings)
        sets += [Setting(k, float(v)) for k, v in (sizes or {}).items()]
        sets += [Setting(k, float(v)) for k, v in (params or {}).items()]
        sets += [Setting(f"weight.{k}", float(v)) for k, v in (weights or {}).items()]
        inputs = list(data_inputs)
        inputs += [DataInput(k, v if isinstance(v, np.ndarray) else Path(v))
                   for k, v in (data or {}).items()]
        point = PointValues()
        point.update({k: np.asarray(v, float) for k, v in (init or {}).items()})
        point.spans.update(getattr(init, "spans", {}))  # a point file's: where each key is
        bound = bind(self.model, tuple(sets), tuple(inputs), point)
        return Problem(self, bound, threads, reorder)  # C backend: threads, locality


def compile_model(model: Model, target: Target = Target.C,
                  backend: BackendKind = BackendKind.AUTO) -> CompiledModel:
    """Build (or fetch) the kernels. AUTO falls back to Python when no compiler exists."""
    if backend is BackendKind.CUDA or (backend is BackendKind.AUTO and target is Target.CUDA):
        from cfc_dsl.runtime.build.pipeline import build_cuda

        return CompiledModel(model, build_cuda(model), cuda=True)
    if backend is BackendKind.PYTHON:
        return CompiledModel(model, None)
    if target is not Target.C:  # CUDA kernels loaded by the C backend would misbehave
        raise CfcError(ErrorKind.ARGUMENT, f"target '{target.value}' kernels run on the "
                       f"'{target.value}' backend, not '{backend.value}'", None,
                       f"use backend '{target.value}', or target 'c' for the C backend")
    if backend is BackendKind.AUTO and find_compiler() is None:
        return CompiledModel(model, None, "no C compiler found: using the Python reference "
                             "backend (slower); install gcc or set CC for compiled kernels")
    return CompiledModel(model, build(model, target))


class Problem:
    """A bound model with a backend: evaluate F and its gradient, or relax it."""

    def __init__(self, compiled: CompiledModel, bound: BoundModel, *options: Any):
        self.compiled = compiled
        self.bound = bound
        self.backend: Backend
        if compiled.cuda and compiled.kernels:
            from cfc_dsl.runtime.backends.cuda import CudaBackend

            self.backend = CudaBackend(bound, compiled.kernels.ffi, compiled.kernels.lib)
        else:
            self.backend = (CBackend(bound, compiled.kernels.ffi, compiled.kernels.lib, *options)
                            if compiled.kernels else PythonBackend(bound))
        self.lower = bound.lower
        self.upper = bound.upper
        self.family_names = tuple(t.name for t in bound.families)
        self._weights = bound_weights(bound)  # every evaluation reads this array
        self._reference: PythonBackend | None = None

    def __repr__(self) -> str:
        factors = sum(t.size for t in self.bound.families)
        return (f"<cfc.Problem {self.model.name!r}: {self.bound.n} variables, {factors} factors, "
                f"backend {self.backend.kind.value}>")

    @property
    def model(self) -> Model:
        return self.bound.model

    @property
    def kernels(self) -> CompiledKernels | None:
        return self.compiled.kernels

    def point(self, x: np.ndarray | Mapping[str, Any] | None) -> np.ndarray:
        if x is None:
            return self.bound.x0.copy()
        if isinstance(x, Mapping):
            return self.bound.join({k: np.asarray(v, float) for k, v in x.items()})
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.bound.n,):
            raise ValueError(f"expected a flat vector of {self.bound.n} values, got {x.shape}")
        return x

    # -- the per-family weights: runtime values, changed without recompiling or rebinding
    @property
    def weights(self) -> np.ndarray:
        """One weight per family (in `family_names` order); assign an array or use
        `set_weights` to change them. The array itself is live: a solver sees a change at
        its next evaluation."""
        return self._weights

    @weights.setter
    def weights(self, values: Any) -> None:
        w = np.asarray(values, dtype=np.float64)
        if w.shape != self._weights.shape or not np.all(np.isfinite(w)):
            raise CfcError(ErrorKind.ARGUMENT, f"expected {self._weights.size} finite weights "
                           f"(one per family), got {np.asarray(values).tolist()!r}", None,
                           f"the families, in order: {', '.join(self.family_names)}")
        self._weights[:] = w

    def set_weights(self, weights: Mapping[str, float]) -> None:
        """Change some families' weights by name, e.g. `set_weights({"link": 0.5})`."""
        w = self._weights.copy()
        for name, value in weights.items():
            if name not in self.family_names:
                import difflib

                close = difflib.get_close_matches(name, self.family_names, n=1)
                raise CfcError(ErrorKind.ARGUMENT, f"no factor family '{name}' to weight", None,
                               (f"did you mean '{close[0]}'? " if close else "")
                               + f"the families: {', '.join(self.family_names)}")
            w[self.family_names.index(name)] = float(value)
        self.weights = w

    # -- evaluation at the current weights
    def energy(self, x: np.ndarray | Mapping[str, Any]) -> tuple[float, np.ndarray]:
        """(F, weighted energy of each family) at a flat vector or a {var: values} dict."""
        return self.backend.energy(x if isinstance(x, np.ndarray) else self.point(x),
                                   self._weights)

    @overload
    def energy_and_grad(self, x: np.ndarray | Mapping[str, Any],
                        per_family: Literal[False] = False
                        ) -> tuple[float, np.ndarray, np.ndarray]: ...

    @overload
    def energy_and_grad(self, x: np.ndarray | Mapping[str, Any],
                        per_family: Literal[True]) -> FamilyEvaluation: ...

    def energy_and_grad(self, x: np.ndarray | Mapping[str, Any], per_family: bool = False
                        ) -> tuple[float, np.ndarray, np.ndarray] | FamilyEvaluation:
        """(F, family energies, flat gradient); `bound.split(grad)` gives it by variable.
        With `per_family`, also each family's weighted gradient (families x n), from the
        same pass; `objective.family_grad_norms` turns them into norms."""
        return self.objective(Needs.PER_FAMILY).energy_and_grad(
            x if isinstance(x, np.ndarray) else self.point(x), per_family)  # type: ignore[call-overload]

    def objective(self, needs: Needs = Needs.NONE, lipschitz: float | None = None) -> Objective:
        """What a solver sees: this problem's backend at its live weights."""
        return Objective(self.backend, self._weights, self.lower, self.upper, self.family_names,
                         self.nonfinite_error, needs, lipschitz)

    def check_finite(self, x: np.ndarray, energy: float, grad: np.ndarray | None, step: int) -> None:
        if np.isfinite(energy) and (grad is None or np.all(np.isfinite(grad))):
            return
        raise self.nonfinite_error(x, step)

    # -- conveniences
    def evaluate(self, x: np.ndarray | Mapping[str, Any] | None = None) -> Evaluation:
        point = self.point(x)
        f, fam, g = self.backend.energy_and_grad(point, self._weights)
        self.check_finite(point, f, g, -1)
        return Evaluation(f, dict(zip(self.family_names, map(float, fam), strict=False)), g)

    def relax(self, solver: str = "auto", x0: np.ndarray | Mapping[str, Any] | None = None, *,
              progress: Progress | None = None, options: Any = None,
              homotopy: Any = None, adapter: str | None = None, adapter_options: Any = None,
              gates: Any = None, expansion: Any = None, **values: Any) -> Relaxation:
        """Relax with a registered solver (`cfc solvers` lists them). Keyword options
        (`max_steps=...`, `tol=...`, the solver's own) are checked against its options
        dataclass: an unknown key or bad value is a CfcError. `options`: a ready dataclass, or a mapping
        checked like the keywords.
        `homotopy`: schedules ("chain=0.1:40", `coordinate.Schedule`s; None: the model's
        `weight ... from ... over` lines, [] none); `adapter`: a registered weight adapter
        ("gradnorm", ...) with `adapter_options` ({key: value} or its dataclass). Gated
        families (`gated cost`, or `gates`): expansion with `expansion` options (expansion.py)."""
        cls = registry.solver_class(solver)
        if options is not None and values:
            raise CfcError(ErrorKind.ARGUMENT, "give either options= or keyword options, "
                           "not both", None, registry.options_hint(solver))
        if options is None or isinstance(options, Mapping):
            options = registry.parse_options(solver, dict(options or values))
        elif not isinstance(options, cls.Options):
            raise CfcError(ErrorKind.ARGUMENT, f"options= for solver '{solver}' must be a "
                           f"{cls.Options.__name__} or a mapping of its keys, not "
                           f"{type(options).__name__}", None, registry.options_hint(solver))
        from cfc_dsl.runtime import coordinate  # its submodules: only when a run uses them

        if expansion is not False and (gates or any(t.gate for t in self.bound.families)):
            from cfc_dsl.runtime.coordinate.expansion import expand

            return expand(self, solver, self.point(x0), options, progress, gates, expansion,
                          homotopy, adapter)
        return coordinate.relax(self, solver, self.point(x0), options, progress, homotopy,
                                adapter, adapter_options)

    def solve_once(self, solver: str, x0: np.ndarray, options: Any,
                   progress: Progress | None = None, stage: int | None = None) -> Relaxation:
        """One run of a registered solver at the live weights (`relax` without homotopy or
        adapters); `stage` goes on every trace row."""
        cls = registry.solver_class(solver)
        instance = cls()
        needs = instance.needs(options)
        lipschitz = None
        if Needs.LIPSCHITZ in needs:  # the certified L, or a refusal naming the factor
            from cfc_dsl.runtime.lipschitz import certified_lipschitz

            lipschitz = certified_lipschitz(self, solver, registry.lipschitz_free_hint(solver))
        objective = self.objective(needs, lipschitz)
        if stage is not None:
            objective.stage = stage  # type: ignore[attr-defined]  (the recorder reads it)
        result = instance.solve(objective, self.point(x0), options, progress)
        return Relaxation(self, result, lipschitz)

    def nonfinite_error(self, x: np.ndarray, step: int) -> CfcError:
        """Name the family and instance where a NaN or Inf first appears."""
        if self._reference is None:
            self._reference = PythonBackend(self.bound)
        ref = self._reference
        when = "at the initial state" if step <= 0 else f"at step {step}"
        for i, table in enumerate(self.bound.families):
            values = ref.per_instance(i, x)
            bad = np.flatnonzero(~np.isfinite(values))
            kind = "energy"
            if not bad.size:
                for j, _ in enumerate(table.slots):
                    bad = np.flatnonzero(~np.isfinite(self._slot_grad(ref, i, j, x)))
                    if bad.size:
                        kind = "gradient"
                        break
            if bad.size:
                k = int(bad[0])
                args = ", ".join(f"{self.bound.element(int(s[k]))} = {x[int(s[k])]:.6g}"
                                 for s in table.slots)
                return CfcError(ErrorKind.NUMERIC,
                                f"the {kind} became {'NaN' if kind == 'energy' and np.isnan(values[k]) else 'non-finite'} "
                                f"{when} in {table.describe(k)} ({args})",
                                table.family.call_span,
                                "a term left its domain (log, sqrt or division near 0?); bound the "
                                "variables away from it or change the parameters")
        return CfcError(ErrorKind.NUMERIC, f"the energy became non-finite {when}", None,
                        "run with '--backend python' to cross-check the compiled kernels")

    @staticmethod
    def _slot_grad(ref: PythonBackend, table_index: int, slot: int, x: np.ndarray) -> np.ndarray:
        table = ref.bound.families[table_index]
        _, grads = ref._fns[table.energy]
        with np.errstate(all="ignore"):
            values = grads[slot](*[x[s] for s in table.slots], *table.params)
        return np.broadcast_to(np.asarray(values, float), (table.size,))

    def to_networkx(self):  # type: ignore[no-untyped-def]
        from cfc_dsl.runtime.graph.bipartite import to_networkx

        return to_networkx(self.bound)

    def _repr_svg_(self) -> str | None:
        """Jupyter shows a bound problem as its expanded factor graph (plate notation when it
        has more than 2,000 nodes); None without graphviz's dot."""
        from cfc_dsl.runtime.figures.output import repr_svg

        return repr_svg(self.model, self.bound)
