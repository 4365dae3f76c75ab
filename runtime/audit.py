"""Audit stage: check the compiled kernels' gradients against exact references, per family.

For every factor family, the generated `cfc_eg_<energy>` kernel is called on one instance at a
time (n = 1, slot indices 0..k-1 into a k-vector, that instance's bound parameter values), so
each family is checked in isolation from the scatter-add. Its gradient is compared with

- exact: the SymPy gradient evaluated with mpmath at `DPS` digits, using the same one-sided
  convention the kernels use at kinks (step(0) = 0, sign(0) = 0);
- complex step: Im E(x + i h e_s) / h on the SymPy energy in mpmath, h = 1e-30 (independent of
  SymPy's differentiation; relu/abs take their local analytic branch, so it is skipped only on
  a kink);
- finite differences: a central (or, on a box face, one-sided second-order) difference of the
  compiled energy kernel `cfc_e_<energy>` with a step chosen per point, its tolerance computed
  from the step (Richardson difference plus a rounding bound); skipped where the stencil would
  cross a kink;
- energy: both kernels' energies against the mpmath energy.

Points: every box corner, points on every face, random interior points and points on each
kink (each relu/abs/max/min argument at 0, found by bisection to the nearest float, plus points
approaching it from both sides), at least `samples` per family. Parameters and boxes come from
instances of the family drawn at random from the bound model. All of it is seeded.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from cfc_dsl.derive import DerivedEnergy, derive_model
from cfc_dsl.functions import NUMPY_FUNCTIONS, AbsVal, Relu, Sign, Step, mpmath_functions
from runtime.bind import BoundModel, FamilyTable

EPS = float(np.finfo(np.float64).eps)
DPS = 60  # digits for every mpmath reference
RTOL = 1e-12  # |kernel - exact| <= RTOL * scale, scale = max(1, |g|, sum of |terms of g|)
KINK_AMBIGUITY = 1e3  # a kink argument within 1e3 eps * its size of 0 may round either way
KINK_SIDES = (1e-6, 1e-11)  # approach distances from a kink, relative to the box width
COMPLEX_STEP = 1e-30
FD_ROUNDING = 16.0  # assumed kernel energy error, in eps * max(1, sum of |terms of E|)
MAX_VARIANTS = 64
REFERENCES = ("exact", "complex_step", "finite_difference", "energy")
KINDS = ("corner", "face", "kink", "kink_side", "interior")


@dataclass(frozen=True)
class AuditOptions:
    samples: int = 200  # at least this many points per family
    seed: int = 0
    rtol: float = RTOL
    dps: int = DPS


# ---------------------------------------------------------------- results
@dataclass
class Tally:
    """Running maxima for one reference of one family."""

    reference: str
    tolerance: str
    checks: int = 0
    skipped: int = 0
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0  # |kernel - reference| / scale
    max_tolerance: float = 0.0  # the largest tolerance used, relative to scale
    worst_ratio: float = 0.0  # max |kernel - reference| / tolerance; pass iff <= 1
    worst: dict[str, Any] | None = None
    failures: int = 0
    one_sided: int = 0  # exact only: kink points where rounding picked the other side

    def add(self, error: float, scale: float, tol: float, where: Callable[[], dict[str, Any]],
            kernel: float, reference: float) -> None:
        self.checks += 1
        ratio = error / tol if tol > 0 else (0.0 if error == 0 else math.inf)
        if not math.isfinite(error):
            ratio = math.inf
        self.max_abs_error = max(self.max_abs_error, error)
        self.max_rel_error = max(self.max_rel_error, error / scale)
        self.max_tolerance = max(self.max_tolerance, tol / scale)
        if ratio > 1:
            self.failures += 1
        if self.worst is None or ratio > self.worst_ratio:
            self.worst_ratio = ratio
            self.worst = {**where(), "kernel": kernel, "reference": reference,
                          "abs_error": error, "rel_error": error / scale, "tolerance": tol}

    @property
    def passed(self) -> bool:
        return self.failures == 0

    def to_json(self) -> dict[str, Any]:
        return {"checks": self.checks, "skipped": self.skipped, "max_abs_error": self.max_abs_error,
                "max_rel_error": self.max_rel_error, "tolerance": self.tolerance,
                "max_tolerance": self.max_tolerance, "worst_ratio": self.worst_ratio,
                "failures": self.failures, "one_sided": self.one_sided, "passed": self.passed,
                "worst": self.worst}


@dataclass
class FamilyAudit:
    family: str
    energy: str
    instances: int
    points: dict[str, int]
    tallies: dict[str, Tally]
    derived: DerivedEnergy = field(repr=False)
    table: FamilyTable = field(repr=False)
    note: str = ""

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.tallies.values())

    def worst(self) -> tuple[str, dict[str, Any]] | None:
        """The reference and point with the largest error/tolerance ratio."""
        ranked = [(t.worst_ratio, name, t.worst) for name, t in self.tallies.items() if t.worst]
        if not ranked:
            return None
        ratio, name, worst = max(ranked, key=lambda r: (r[0], -REFERENCES.index(r[1])))
        return name, worst  # type: ignore[return-value]

    def to_json(self) -> dict[str, Any]:
        worst = self.worst()
        return {"energy": self.energy, "instances": self.instances, "points": self.points,
                "checks": {name: t.to_json() for name, t in self.tallies.items()},
                "passed": self.passed, "note": self.note,
                "worst": {"check": worst[0], **worst[1]} if worst else None}


@dataclass
class AuditReport:
    model: str
    options: AuditOptions
    families: list[FamilyAudit]

    @property
    def passed(self) -> bool:
        return all(f.passed for f in self.families)

    @property
    def failures(self) -> list[FamilyAudit]:
        return [f for f in self.families if not f.passed]


# ---------------------------------------------------------------- the kernel, one instance
class KernelProbe:
    """Calls `cfc_eg_<energy>` / `cfc_e_<energy>` on one instance: slots 0..k-1 of a k-vector."""

    def __init__(self, ffi: Any, lib: Any, energy: str, k: int, m: int):
        self.eg = getattr(lib, f"cfc_eg_{energy}")
        self.e = getattr(lib, f"cfc_e_{energy}")
        self._idx = [np.array([j], dtype=np.int64) for j in range(k)]
        self._par = [np.zeros(1) for _ in range(m)]
        self.X = np.zeros(k)
        self.G = np.zeros(k)
        def ptr(a: np.ndarray, t: str) -> Any:
            return ffi.cast(t, a.ctypes.data)

        self._args = [1] + [ptr(a, "int64_t *") for a in self._idx] \
            + [ptr(a, "double *") for a in self._par]
        self._xp = ptr(self.X, "double *")
        self._gp = ptr(self.G, "double *")

    def _load(self, x: np.ndarray, p: np.ndarray) -> None:
        self.X[:] = x
        for arr, value in zip(self._par, p, strict=True):
            arr[0] = value

    def grad(self, x: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray]:
        self._load(x, p)
        self.G[:] = 0.0
        energy = float(self.eg(*self._args, 1.0, self._xp, self._gp))
        return energy, self.G.copy()

    def energy(self, x: np.ndarray, p: np.ndarray) -> float:
        self._load(x, p)
        return float(self.e(*self._args, self._xp))


# ---------------------------------------------------------------- exact references
def _complex_functions() -> dict[str, Callable[[Any], Any]]:
    """mpmath implementations that accept a complex argument: each non-smooth function takes
    the analytic branch selected by the real part, so complex steps work off the kinks."""
    re = mpmath.re

    def sign(u: Any) -> Any:
        r = re(u)
        return mpmath.mpf(1) if r > 0 else (mpmath.mpf(-1) if r < 0 else mpmath.mpf(0))

    return {
        "Step": lambda u: mpmath.mpf(1) if re(u) > 0 else mpmath.mpf(0),
        "Relu": lambda u: u if re(u) > 0 else mpmath.mpf(0),
        "Sign": sign,
        "AbsVal": lambda u: -u if re(u) < 0 else u,
        "Sigmoid": lambda u: 1 / (1 + mpmath.exp(-u)),
        "Softplus": lambda u: mpmath.log(1 + mpmath.exp(u)),
    }


def _terms(e: sp.Expr) -> list[sp.Expr]:
    return list(e.args) if e.is_Add else [e]


def kink_arguments(d: DerivedEnergy) -> list[sp.Expr]:
    """Arguments u of every relu/abs (and their step/sign) whose sign flip is a kink in x."""
    found: list[sp.Expr] = []
    slots = set(d.slots)
    for e in (d.expr, *d.grad):
        for node in sorted(e.atoms(Relu, AbsVal, Step, Sign), key=sp.default_sort_key):
            u = node.args[0]
            if u.free_symbols & slots and not any(u == v or u == -v for v in found):
                found.append(u)
    return found


def _finite(v: Any) -> bool:
    return isinstance(v, mpmath.mpf) and bool(mpmath.isfinite(v))


class Oracle:
    """mpmath (and float) evaluations of one derived energy, built once per energy."""

    def __init__(self, d: DerivedEnergy):
        self.d = d
        args = list(d.slots) + list(d.params)
        self.args = args
        real = [mpmath_functions(), "mpmath"]
        cplx = [_complex_functions(), "mpmath"]
        self.energy = sp.lambdify(args, d.expr, real)
        self.energy_terms = sp.lambdify(args, _terms(d.expr), real)
        self.energy_c = sp.lambdify(args, d.expr, cplx)
        self.grads = [sp.lambdify(args, g, real) for g in d.grad]
        self.grad_terms = [sp.lambdify(args, _terms(g), real) for g in d.grad]
        self.kinks = kink_arguments(d)
        self.kink_mp = [sp.lambdify(args, u, real) for u in self.kinks]
        self.kink_terms = [sp.lambdify(args, _terms(u), real) for u in self.kinks]
        self.kink_np = [sp.lambdify(args, u, [NUMPY_FUNCTIONS, "numpy"]) for u in self.kinks]
        self.kink_slots = [[i for i, s in enumerate(d.slots) if s in u.free_symbols]
                           for u in self.kinks]
        # step/sign nodes of each gradient component, with the kink they belong to
        self.jump_nodes: list[list[tuple[sp.Expr, int]]] = []
        for g in d.grad:
            nodes = []
            for node in sorted(g.atoms(Step, Sign), key=sp.default_sort_key):
                u = node.args[0]
                j = next((j for j, v in enumerate(self.kinks) if u == v or u == -v), None)
                if j is not None:
                    nodes.append((node, j))
            self.jump_nodes.append(nodes)
        self._variants: dict[tuple[int, tuple[tuple[int, int], ...]], Callable[..., Any]] = {}

    def variant(self, slot: int, choice: tuple[tuple[int, int], ...]) -> Callable[..., Any]:
        """The gradient component with some step/sign nodes replaced by constants."""
        key = (slot, choice)
        if key not in self._variants:
            nodes = self.jump_nodes[slot]
            subs = {nodes[n][0]: sp.Integer(v) for n, v in choice}
            g = self.d.grad[slot].xreplace(subs)
            self._variants[key] = sp.lambdify(self.args, g, [mpmath_functions(), "mpmath"])
        return self._variants[key]


def _mp_call(fn: Callable[..., Any], args: Sequence[Any]) -> Any:
    """fn(*args) with plain numbers as mpf; None where it is undefined (a domain error)."""
    try:
        value = fn(*args)
    except (ZeroDivisionError, ValueError, OverflowError, TypeError):
        return None
    return [_as_mp(v) for v in value] if isinstance(value, (list, tuple)) else _as_mp(value)


def _as_mp(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return mpmath.mpf(value)
    return value


def _magnitude(terms: Any) -> Any:
    if terms is None:
        return None
    vals = terms if isinstance(terms, (list, tuple)) else [terms]
    if not all(_finite(v) for v in vals):
        return None
    return mpmath.fsum(abs(v) for v in vals)


# ---------------------------------------------------------------- points
@dataclass(frozen=True)
class Point:
    kind: str
    instance: int
    x: np.ndarray


class PointSampler:
    def __init__(self, oracle: Oracle, table: FamilyTable, bound: BoundModel,
                 options: AuditOptions):
        self.oracle = oracle
        self.table = table
        self.k = len(oracle.d.slots)
        seed = [options.seed, zlib.crc32(table.name.encode())]
        self.rng = np.random.default_rng(seed)
        self.samples = options.samples
        lo = np.stack([bound.lower[s] for s in table.slots], axis=1) if self.k else None
        hi = np.stack([bound.upper[s] for s in table.slots], axis=1) if self.k else None
        self.lo, self.hi = _finite_box(lo, hi)
        self.params = (np.stack(table.params, axis=1) if table.params
                       else np.zeros((table.size, 0)))

    def instance(self) -> int:
        return int(self.rng.integers(self.table.size))

    def interior(self, i: int) -> np.ndarray:
        u = self.rng.random(self.k)
        return self.lo[i] + (self.hi[i] - self.lo[i]) * u

    def points(self) -> list[Point]:
        k, n = self.k, self.samples
        out: list[Point] = []
        corners = list(itertools.product((0, 1), repeat=k)) if k <= 6 else \
            [tuple(self.rng.integers(0, 2, k)) for _ in range(64)]
        for c in corners:
            i = self.instance()
            out.append(Point("corner", i, np.where(np.array(c) == 1, self.hi[i], self.lo[i])))
        per_face = max(1, math.ceil(n / 8 / (2 * k)))
        for s in range(k):
            for side in (0, 1):
                for _ in range(per_face):
                    i = self.instance()
                    x = self.interior(i)
                    x[s] = (self.lo[i] if side == 0 else self.hi[i])[s]
                    out.append(Point("face", i, x))
        out += self.kink_points()
        interior = max(n - len(out), math.ceil(n / 4))
        for _ in range(interior):
            i = self.instance()
            out.append(Point("interior", i, self.interior(i)))
        return out

    def kink_points(self) -> list[Point]:
        pairs = [(j, s) for j, slots in enumerate(self.oracle.kink_slots) for s in slots]
        if not pairs:
            return []
        per_pair = max(2, math.ceil(self.samples / 4 / (1 + 2 * len(KINK_SIDES)) / len(pairs)))
        out: list[Point] = []
        for j, s in pairs:
            found = 0
            for _attempt in range(per_pair * 10):
                if found == per_pair:
                    break
                i = self.instance()
                x = self.interior(i)
                root = self._root(j, s, i, x)
                if root is None:
                    continue
                found += 1
                x[s] = root
                out.append(Point("kink", i, x.copy()))
                width = self.hi[i, s] - self.lo[i, s]
                for d in KINK_SIDES:
                    for sign in (-1.0, 1.0):
                        y = x.copy()
                        y[s] = root + sign * d * max(width, abs(root), 1e-300)
                        if self.lo[i, s] <= y[s] <= self.hi[i, s] and y[s] != root:
                            out.append(Point("kink_side", i, y))
        return out

    def _root(self, j: int, s: int, i: int, x: np.ndarray) -> float | None:
        """A float t with kink argument j nearest 0 at x[s] = t, bracketed on a grid."""
        lo, hi = float(self.lo[i, s]), float(self.hi[i, s])
        if not lo < hi:
            return None
        grid = np.linspace(lo, hi, 33)
        cols = [np.full(grid.shape, v) for v in x] + [np.full(grid.shape, p) for p in self.params[i]]
        cols[s] = grid
        with np.errstate(all="ignore"):
            vals = np.broadcast_to(np.asarray(self.oracle.kink_np[j](*cols), float), grid.shape)
        cands: list[tuple[float, float]] = [(g, g) for g, v in zip(grid, vals, strict=True)
                                              if v == 0]
        sgn = np.sign(vals)
        cands += [(grid[a], grid[a + 1]) for a in range(len(grid) - 1)
                  if sgn[a] * sgn[a + 1] < 0]
        if not cands:
            return None
        a, b = cands[int(self.rng.integers(len(cands)))]
        if a == b:
            return float(a)
        u = self.oracle.kink_mp[j]
        params = [mpmath.mpf(float(p)) for p in self.params[i]]

        def f(t: float) -> Any:
            xs = [mpmath.mpf(float(v)) for v in x]
            xs[s] = mpmath.mpf(t)
            return _mp_call(u, xs + params)

        fa = f(a)
        if not _finite(fa):
            return None
        for _ in range(200):
            m = 0.5 * (a + b)
            if m in (a, b):
                break
            fm = f(m)
            if not _finite(fm):
                return None
            if fm == 0:
                return float(m)
            if (fm > 0) == (fa > 0):
                a, fa = m, fm
            else:
                b = m
        fb = f(b)
        return float(a if not _finite(fb) or abs(fa) <= abs(fb) else b)


def _finite_box(lo: np.ndarray | None, hi: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The variables' bounds, with an infinite side replaced by the other side -/+ 10."""
    if lo is None or hi is None:
        return np.zeros((0, 0)), np.zeros((0, 0))
    lo, hi = lo.astype(float).copy(), hi.astype(float).copy()
    lo_bad, hi_bad = ~np.isfinite(lo), ~np.isfinite(hi)
    lo[lo_bad] = np.where(np.isfinite(hi[lo_bad]), hi[lo_bad], 0.0) - 10.0
    hi[hi_bad] = np.where(np.isfinite(lo[hi_bad]), lo[hi_bad], 0.0) + 10.0
    return lo, hi


# ---------------------------------------------------------------- one family
def method() -> dict[str, Any]:
    """The audit's fixed choices, recorded in every report and certificate."""
    return {
        "scale": "max(1, |g|, sum of |terms of g|) for a gradient entry g; "
                 "max(1, sum of |terms of E|) for the energy",
        "kink_sides": list(KINK_SIDES), "kink_ambiguity": KINK_AMBIGUITY * EPS,
        "complex_step": COMPLEX_STEP, "fd_rounding_eps": FD_ROUNDING,
        "kink_convention": "step(0) = 0, sign(0) = 0, relu'(0) = 0, abs'(0) = 0",
        "kernel_call": "cfc_eg_<energy> and cfc_e_<energy> with n = 1, weight = 1",
    }


def _tallies(rtol: float, dps: int) -> dict[str, Tally]:
    return {
        "exact": Tally("exact", f"{rtol!r} * scale (mpmath, {dps} digits)"),
        "complex_step": Tally("complex_step", f"{rtol!r} * scale (mpmath, h = {COMPLEX_STEP!r})"),
        "finite_difference": Tally("finite_difference",
                                   "per point: 2 * (truncation estimate of D(h/4) from D(h), "
                                   "D(h/2), D(h/4)) + 2 * rounding bound at step h/4"),
        "energy": Tally("energy", f"{rtol!r} * max(1, sum of |terms of E|)"),
    }


class FamilyAuditor:
    def __init__(self, table: FamilyTable, derived: DerivedEnergy, oracle: Oracle,
                 bound: BoundModel, kernels: Any, options: AuditOptions):
        self.table = table
        self.d = derived
        self.oracle = oracle
        self.bound = bound
        self.options = options
        self.k = len(derived.slots)
        self.probe = KernelProbe(kernels.ffi, kernels.lib, derived.name, self.k,
                                 len(derived.params))
        self.sampler = PointSampler(oracle, table, bound, options)
        self.tallies = _tallies(options.rtol, options.dps)

    def run(self) -> FamilyAudit:
        points: dict[str, int] = dict.fromkeys(KINDS, 0)
        note = ""
        if self.table.size == 0:
            note = "no instances at these sizes: nothing to check"
        elif self.k == 0:
            note = "the energy has no variable slots: nothing to differentiate"
        else:
            with mpmath.workdps(self.options.dps):
                for point in self.sampler.points():
                    points[point.kind] += 1
                    self.check(point)
        points["total"] = sum(points[k] for k in KINDS)
        return FamilyAudit(self.table.name, self.d.name, self.table.size, points, self.tallies,
                           self.d, self.table, note)

    # -- helpers
    def _where(self, point: Point, slot: int | None) -> Callable[[], dict[str, Any]]:
        def where() -> dict[str, Any]:
            i = point.instance
            names = [s.name for s in self.d.slots]
            return {
                "kind": point.kind, "instance": i, "factor": self.table.describe(i),
                "slot": names[slot] if slot is not None else None,
                "x": {n: float(v) for n, v in zip(names, point.x, strict=True)},
                "variables": {n: self.bound.element(int(self.table.slots[j][i]))
                              for j, n in enumerate(names)},
                "params": {p.name: float(self.table.params[j][i])
                           for j, p in enumerate(self.d.params)},
            }
        return where

    def check(self, point: Point) -> None:
        o, rtol = self.oracle, self.options.rtol
        p = self.sampler.params[point.instance]
        mp_args = [mpmath.mpf(float(v)) for v in point.x] + [mpmath.mpf(float(v)) for v in p]
        e_kernel, g_kernel = self.probe.grad(point.x, p)
        e_only = self.probe.energy(point.x, p)

        # kinks within rounding of 0 at this point: either side is an acceptable decision
        ambiguous: set[int] = set()
        for j, (u, terms) in enumerate(zip(o.kink_mp, o.kink_terms, strict=True)):
            val, mag = _mp_call(u, mp_args), _magnitude(_mp_call(terms, mp_args))
            if _finite(val) and mag is not None and \
                    abs(val) <= KINK_AMBIGUITY * EPS * max(1, mag):
                ambiguous.add(j)

        # energy
        e_ref = _mp_call(o.energy, mp_args)
        e_mag = _magnitude(_mp_call(o.energy_terms, mp_args))
        tally = self.tallies["energy"]
        if not _finite(e_ref) or e_mag is None:
            tally.skipped += 1
            e_scale = 1.0
        else:
            e_scale = float(max(1, e_mag))
            errs = [float(abs(mpmath.mpf(v) - e_ref)) if math.isfinite(v) else math.inf
                    for v in (e_kernel, e_only)]
            worst = max(range(2), key=lambda n: errs[n])
            tally.add(errs[worst], e_scale, rtol * e_scale, self._where(point, None),
                      (e_kernel, e_only)[worst], float(e_ref))

        for s in range(self.k):
            g = float(g_kernel[s])
            ref = _mp_call(o.grads[s], mp_args)
            mag = _magnitude(_mp_call(o.grad_terms[s], mp_args))
            if not _finite(ref) or mag is None:
                for name in ("exact", "complex_step", "finite_difference"):
                    self.tallies[name].skipped += 1
                continue
            scale = float(max(1, abs(ref), mag))
            tol = rtol * scale
            where = self._where(point, s)
            err = _error(g, ref)
            best_ref = ref
            if err > tol:
                alt = self._kink_variants(s, ambiguous, mp_args, g)
                if alt is not None and alt[0] < err:
                    err, best_ref = alt
                    self.tallies["exact"].one_sided += int(err <= tol)
            self.tallies["exact"].add(err, scale, tol, where, g, float(best_ref))

            on_kink = any(s in o.kink_slots[j] for j in ambiguous)
            cs = None if on_kink else self._complex_step(s, mp_args)
            if cs is None:
                self.tallies["complex_step"].skipped += 1
            else:
                self.tallies["complex_step"].add(_error(g, cs), scale, tol, where, g, float(cs))

            fd = None if on_kink else self._finite_difference(point, p, s, e_mag)
            if fd is None:
                self.tallies["finite_difference"].skipped += 1
            else:
                value, fd_tol = fd
                fd_tol = max(fd_tol, tol)
                err = abs(g - value) if math.isfinite(g) else math.inf
                self.tallies["finite_difference"].add(err, scale, fd_tol, where, g, value)

    def _kink_variants(self, s: int, ambiguous: set[int], mp_args: list[Any],
                       g: float) -> tuple[float, Any] | None:
        """The closest reference when step/sign nodes of ambiguous kinks take either side."""
        nodes = [(n, node) for n, (node, j) in enumerate(self.oracle.jump_nodes[s])
                 if j in ambiguous]
        if not nodes:
            return None
        options = [[(n, v) for v in ((0, 1) if isinstance(node, Step) else (-1, 0, 1))]
                   for n, node in nodes]
        best: tuple[float, Any] | None = None
        for count, choice in enumerate(itertools.product(*options)):
            if count >= MAX_VARIANTS:
                break
            ref = _mp_call(self.oracle.variant(s, tuple(choice)), mp_args)
            if _finite(ref):
                err = _error(g, ref)
                if best is None or err < best[0]:
                    best = (err, ref)
        return best

    def _complex_step(self, s: int, mp_args: list[Any]) -> Any:
        args = list(mp_args)
        h = mpmath.mpf(COMPLEX_STEP) * max(1, abs(args[s]))
        args[s] = mpmath.mpc(args[s], h)
        value = _mp_call(self.oracle.energy_c, args)
        if value is None:
            return None
        d = mpmath.im(value) / h
        return d if _finite(d) else None

    def _finite_difference(self, point: Point, p: np.ndarray, s: int,
                           e_mag: Any) -> tuple[float, float] | None:
        """Richardson-checked difference of the energy kernel along slot s, with a tolerance."""
        i, x = point.instance, point.x
        lo, hi = float(self.sampler.lo[i, s]), float(self.sampler.hi[i, s])
        h = EPS ** (1 / 3) * max(1.0, abs(float(x[s])))
        if hi > lo:
            h = min(h, (hi - lo) / 8)
        for _ in range(5):  # shrink the step (down to h/4096) to stay off kinks
            stencil = _stencil(float(x[s]), h, lo, hi)
            nodes = [float(x[s]) + o * h / 2**n for o in stencil[0] for n in range(3)]
            if not self._crosses_kink(x, p, s, nodes):
                break
            h /= 8
        else:
            return None
        offsets, coeffs = stencil
        d = [self._difference(x, p, s, h / 2**n, offsets, coeffs) for n in range(3)]
        if any(v is None for v in d):
            return None
        d1, d2, d3 = (float(v) for v in d)  # type: ignore[arg-type]
        # truncation error of D(h/4) from the observed convergence order (2 where smooth,
        # lower at a singular edge such as g^1.5 at g = 0), clipped to [1/4, 2]
        a, b = abs(d1 - d2), abs(d2 - d3)
        order = 2.0 if b == 0 or a == 0 else min(2.0, max(0.25, math.log2(a / b)))
        truncation = b / (2**order - 1)
        mag = float(max(1, e_mag)) if e_mag is not None else 1.0
        rounding = sum(abs(c) for c in coeffs) * FD_ROUNDING * EPS * mag / (h / 4)
        return d3, 2 * truncation + 2 * rounding

    def _difference(self, x: np.ndarray, p: np.ndarray, s: int, h: float,
                    offsets: tuple[float, ...], coeffs: tuple[float, ...]) -> float | None:
        total = 0.0
        for o, c in zip(offsets, coeffs, strict=True):
            y = x.copy()
            y[s] = x[s] + o * h
            f = self.probe.energy(y, p)
            if not math.isfinite(f):
                return None
            total += c * f
        return total / h

    def _crosses_kink(self, x: np.ndarray, p: np.ndarray, s: int, nodes: list[float]) -> bool:
        o = self.oracle
        cols = [np.full(len(nodes) + 1, v) for v in x] + [np.full(len(nodes) + 1, v) for v in p]
        cols[s] = np.array([float(x[s]), *nodes])
        for j, slots in enumerate(o.kink_slots):
            if s not in slots:
                continue
            with np.errstate(all="ignore"):
                vals = np.broadcast_to(np.asarray(o.kink_np[j](*cols), float), cols[s].shape)
            signs = np.sign(vals)
            if np.any(signs == 0) or np.any(signs != signs[0]) or not np.all(np.isfinite(vals)):
                return True
        return False


def _stencil(x: float, h: float, lo: float, hi: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Central difference inside the box; second-order one-sided on a face."""
    if not hi > lo or (x - h >= lo and x + h <= hi):
        return (-1.0, 1.0), (-0.5, 0.5)
    if x + 2 * h <= hi:
        return (0.0, 1.0, 2.0), (-1.5, 2.0, -0.5)
    return (0.0, -1.0, -2.0), (1.5, -2.0, 0.5)


def _error(kernel: float, reference: Any) -> float:
    if not math.isfinite(kernel):
        return math.inf
    return float(abs(mpmath.mpf(kernel) - reference))


# ---------------------------------------------------------------- the model
def audit(bound: BoundModel, kernels: Any, options: AuditOptions | None = None,
          derived: Sequence[DerivedEnergy] | None = None) -> AuditReport:
    """Check every family of `bound` against the compiled `kernels` (a `CompiledKernels`)."""
    options = options or AuditOptions()
    if options.samples < 1:
        raise ValueError("samples must be at least 1")
    energies = {d.name: d for d in (derived if derived is not None else derive_model(bound.model))}
    oracles: dict[str, Oracle] = {}
    families = []
    for table in bound.families:
        d = energies[table.energy]
        if d.name not in oracles:
            oracles[d.name] = Oracle(d)
        auditor = FamilyAuditor(table, d, oracles[d.name], bound, kernels, options)
        families.append(auditor.run())
    return AuditReport(bound.model.name, options, families)


__all__ = ["AuditOptions", "AuditReport", "FamilyAudit", "KernelProbe", "Oracle", "PointSampler",
           "Tally", "audit", "kink_arguments", "method"]
