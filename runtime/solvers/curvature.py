"""The cheap second-order test every solver runs before it reports convergence: a few
Lanczos steps with Hessian-vector products on the free coordinates (interior ones, and those
at a bound whose gradient is zero there) give the smallest curvature found and its direction.
Negative curvature is escaped along +-direction, projected onto the box, with a decrease test,
so that no solver stops at a saddle or a maximum that it can see.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import numpy as np

from cfc_dsl.runtime.solvers.clanczos import LanczosLoop
from cfc_dsl.runtime.solvers.registry import Needs
from cfc_dsl.runtime.solvers.vectors import clip, dot, norm

_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class SecondOrder:
    """What the test found: the smallest curvature (Ritz value) along the free coordinates,
    whether the point passed (no curvature below -curvature_tol x the curvature scale), and
    how many Lanczos steps (Hessian-vector products) it took."""

    min_curvature: float
    passed: bool
    lanczos_steps: int

    def to_json(self) -> dict[str, Any]:
        value = self.min_curvature if math.isfinite(self.min_curvature) else None
        return {"min_curvature": value, "passed": self.passed,
                "lanczos_steps": self.lanczos_steps}


@dataclass(frozen=True)
class Curvature:
    report: SecondOrder
    direction: np.ndarray | None  # unit, zero off the free set; None unless negative


def free_mask(x: np.ndarray, g: np.ndarray, lo: np.ndarray, hi: np.ndarray,
              tol: float) -> np.ndarray:
    """Interior coordinates, and those at a bound whose gradient is (within tol of) zero."""
    return ((x > lo) & (x < hi)) | (np.abs(g) <= tol)


def hessian_product(objective: Any, x: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """v -> H(x) v: the generated kernels when declared, else central differences of the
    gradient (two gradient evaluations per product)."""
    if Needs.HVP in getattr(objective, "needs", Needs.NONE) and hasattr(objective, "hvp"):
        return lambda v: np.asarray(objective.hvp(x, v), dtype=np.float64)
    scale = 1.0 + float(np.max(np.abs(x))) if x.size else 1.0

    def fd(v: np.ndarray) -> np.ndarray:
        h = math.sqrt(_EPS) * scale / max(norm(v), 1e-300)
        return (objective.energy_and_grad(x + h * v)[2]
                - objective.energy_and_grad(x - h * v)[2]) / (2.0 * h)

    return fd


Steps = Callable[[np.ndarray, np.ndarray, int], tuple[Any, Any, np.ndarray, int, bool]]
"""(mask, unit start vector, k) -> (alphas, betas (floats), basis rows, steps taken, whether
every product was finite): at most k Lanczos steps (`_steps`, or clanczos's C loop)."""


def lanczos(hv: Callable[[np.ndarray], np.ndarray], mask: np.ndarray, steps: int,
            seed: int = 0, vectors: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """(Ritz values ascending, Ritz vectors as columns in the full space, products used) of
    H restricted to `mask`, from a seeded random start, fully re-orthogonalised. `vectors`:
    how many of the lowest Ritz vectors to form (None: all; each is one pass over the basis)."""
    return _lanczos(partial(_steps, hv), mask, steps, seed, vectors)


def _lanczos(run: Steps, mask: np.ndarray, steps: int, seed: int = 0,
             vectors: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """`lanczos` with the steps `run` takes (in Python or in C)."""
    n_free = int(mask.sum())
    k = min(steps, n_free)
    q = _draw(seed, mask.size) * mask
    q /= norm(q)
    alphas, betas, basis, m, finite = run(mask, q, k)
    if not finite:
        return np.array([math.nan]), np.zeros((mask.size, 1)), m
    # the tridiagonal T is at most steps x steps: NumPy's dense eigh is exact enough and
    # keeps SciPy out of every run's imports
    off = np.array(betas[:m - 1])
    theta, y = np.linalg.eigh(np.diag(np.array(alphas)) + np.diag(off, 1) + np.diag(off, -1))
    return theta, np.einsum("ji,jk->ik", basis[:m], y[:, :vectors]), m


@lru_cache(maxsize=8)
def _draw(seed: int, size: int) -> np.ndarray:
    """The seeded normal start draw, the same at every call: made once per size (seeding
    a generator cost ~40 us, a twentieth of the C loop's whole test at N = 10^3)."""
    drawn = np.random.default_rng(seed).standard_normal(size)
    drawn.flags.writeable = False
    return drawn


def _steps(hv: Callable[[np.ndarray], np.ndarray], mask: np.ndarray, q: np.ndarray, k: int
           ) -> tuple[list[float], list[float], np.ndarray, int, bool]:
    """The Lanczos steps in Python (the `Steps` of `hv`): also the path of the
    finite-difference products, and of every objective the C loop does not serve."""
    basis = np.empty((k, mask.size))  # the Lanczos vectors as rows
    alphas: list[float] = []
    betas: list[float] = []
    for j in range(k):
        basis[j] = q
        w = hv(q) * mask
        if not np.isfinite(w).all():
            return alphas, betas, basis, j + 1, False
        alphas.append(dot(w, q))
        done = basis[:j + 1]
        for _ in range(2):  # classical Gram-Schmidt twice is enough (Giraud et al. 2005);
            # one pass over the basis each way, in NumPy's own loops (vectors.py: no BLAS)
            w -= np.einsum("i,ij->j", np.einsum("ij,j->i", done, w), done)
        beta = norm(w)
        if j + 1 == k or beta <= 1e-12 * max(1.0, max(abs(a) for a in alphas)):
            break
        betas.append(beta)
        q = w / beta
    return alphas, betas, basis, len(alphas), True


def second_order_test(objective: Any, x: np.ndarray, g: np.ndarray, tol: float,
                      steps: int, curvature_tol: float, f: float | None = None) -> Curvature:
    """Lanczos on the free coordinates at x: the smallest curvature and, when it is below
    -curvature_tol x the largest |curvature| found, its direction. Given F(x), a negative
    curvature too small to lower F by more than round-off anywhere in the box (|curvature|
    x the free box's diameter^2 / 2 below 64 eps |F|) passes: no step could resolve it."""
    mask = free_mask(x, g, objective.lower, objective.upper, tol)
    if steps <= 0 or not mask.any():
        return Curvature(SecondOrder(0.0, True, 0), None)
    loop = LanczosLoop.for_objective(objective)  # the same steps in C where it applies
    run = partial(loop.steps, x) if loop is not None else partial(
        _steps, hessian_product(objective, x))
    theta, vectors, used = _lanczos(run, mask, steps, vectors=1)
    low = float(theta[0])
    if not math.isfinite(low):  # the Hessian is not finite here (g^p at 0, p < 2): probe
        return _probe(objective, x, mask, used)
    scale = float(np.max(np.abs(theta)))
    if low < 0.0 and low < -curvature_tol * scale and _resolvable(objective, mask, low, f):
        d = vectors[:, 0] * mask
        return Curvature(SecondOrder(low, False, used), d / norm(d))
    return Curvature(SecondOrder(low, True, used), None)


def _resolvable(objective: Any, mask: np.ndarray, curvature: float, f: float | None) -> bool:
    if f is None:
        return True
    width = (objective.upper - objective.lower)[mask]
    diameter2 = dot(width, width)
    return not math.isfinite(diameter2) or (
        -0.5 * curvature * diameter2 > 64 * _EPS * max(1.0, abs(f)))


def _probe(objective: Any, x: np.ndarray, mask: np.ndarray, used: int) -> Curvature:
    """Where H is not finite: a seeded random direction into the box on the free set, and the
    inward one, tried at short steps; at each trial also the part of the direction whose
    coordinates the gradient there still pulls along it (a coordinate gaining like g^p with
    p < 2 is hidden by a neighbour losing faster, so the whole direction rises). A drop beyond
    round-off fails the point, with the secant curvature."""
    lo, hi = objective.lower, objective.upper
    d = np.abs(np.random.default_rng(1).standard_normal(x.size)) * mask
    d = np.where(x >= hi, -d, d)
    d = np.where((x > lo) & (x < hi), d * np.sign(np.random.default_rng(2).standard_normal(
        x.size)), d)
    inward = np.where(x <= lo, 1.0, np.where(x >= hi, -1.0, 0.0)) * mask
    f = float(objective.energy(x)[0])
    floor = 64 * _EPS * max(1.0, abs(f))

    def drop(u: np.ndarray, alpha: float) -> float:
        f_t = float(objective.energy(clip(x + alpha * u, lo, hi))[0])
        return f - f_t if math.isfinite(f_t) else -math.inf

    for u in (_unit(d), _unit(inward)):
        if u is None:
            continue
        for alpha in (1e-2, 1e-3, 1e-4, 1e-6):
            trials = [u]
            if drop(u, alpha) <= floor:
                g_t = objective.energy_and_grad(clip(x + alpha * u, lo, hi))[2]
                downhill = _unit(u * (u * np.asarray(g_t) < 0.0))
                trials = [downhill] if downhill is not None else []
            for v in trials:
                gain = drop(v, alpha)
                if gain > floor:
                    return Curvature(SecondOrder(-2.0 * gain / (alpha * alpha), False, used), v)
    return Curvature(SecondOrder(math.nan, True, used), None)


def _unit(v: np.ndarray) -> np.ndarray | None:
    length = norm(v)
    return v / length if length > 0.0 and math.isfinite(length) else None


Escape = tuple[np.ndarray, float, np.ndarray, np.ndarray, float, int]
"""(x, F, family energies, gradient, step length, halvings) of an accepted escape."""


def escape(objective: Any, x: np.ndarray, f: float, g: np.ndarray, direction: np.ndarray,
           curvature: float, c: float = 1e-4, max_halvings: int = 40) -> Escape | None:
    """Move along +-direction (or its reflection into the box at bounds, or the uniform move
    inward there), projected onto the box, from a step as long as the widest free
    coordinate's box down by halvings, until F drops by at least c x the model's decrease
    (first order plus curvature/2 |s|^2) and by more than round-off; None when no trial does."""
    lo, hi = objective.lower, objective.upper
    d = -direction if dot(g, direction) > 0 else direction
    # at a bound, the clipped +-d keep only the components pointing into the box, which can
    # turn the curvature positive (a Ritz vector of a near-constant mode with some noise of
    # either sign, at a corner); so the directions reflected into the box are tried as well
    at_lo, at_hi = x <= lo, x >= hi
    reflected = [np.where(at_lo, np.abs(v), np.where(at_hi, -np.abs(v), v)) for v in (d, -d)]
    # and the uniform move into the box of the free coordinates at a bound (the mode a
    # Ritz vector only approximates at a corner where every coordinate sits at 0)
    inward = np.where(at_lo, 1.0, np.where(at_hi, -1.0, 0.0)) * (direction != 0)
    length = norm(inward)
    reflected += [inward / length] if length > 0 else []
    directions = [d, -d] + [v for v in reflected
                            if not (np.array_equal(v, d) or np.array_equal(v, -d))]
    widths = (hi - lo)[direction != 0]
    widths = widths[np.isfinite(widths)]
    alpha = float(widths.max()) if widths.size else 1.0
    floor = 4.0 * _EPS * max(1.0, abs(f))
    for halvings in range(max_halvings + 1):
        for s in directions:
            trial = clip(x + alpha * s, lo, hi)
            disp = trial - x
            model = min(0.0, dot(g, disp)) + 0.5 * curvature * dot(disp, disp)
            bound = min(f + c * model, f - floor)
            f_trial, _ = objective.energy(trial)
            if np.isfinite(f_trial) and f_trial <= bound:
                f_new, fam, g_new = objective.energy_and_grad(trial)
                if np.isfinite(f_new) and f_new <= bound:
                    return trial, f_new, fam, g_new, alpha, halvings
        alpha *= 0.5
    return None
