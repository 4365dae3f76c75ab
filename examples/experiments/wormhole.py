"""Wormhole demo (SEED_SPEC 6.12): where "4.8x more activation" came from.

Two scenarios of `wormhole.cfc`, both from (gate, domain) = (0, 0.5): 1) a quadratic link
w = 1; 2) a link w = 0.5 plus a gate benefit w = 2, Δ = 0.3. The research code ran 30 plain
gradient steps of 0.05 on each and compared η_gate and the energy drop. The table gives, per
scenario, the exact gradient at the closed gate (`problem.energy_and_grad`), the 30-step
result, the scenario's own true minimum (lbfgsb), and each final state's energy under the
OTHER scenario's function: the two runs minimise different functions, and the plain link
already pulls the closed gate with gradient −1.0.

    python examples/experiments/wormhole.py [--out DIR] [--quick]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from harness import HERE, arguments, new_figure, save, write_table

import cfc_dsl as cfc

SCENARIOS = {"1: link": {"w_quad": 1.0, "w_benefit": 0.0, "delta": 0.3},
             "2: link + benefit": {"w_quad": 0.5, "w_benefit": 2.0, "delta": 0.3}}
START = np.array([0.0, 0.5])  # (gate, domain)
STEPS, STEP = 30, 0.05  # the research code's plain gradient descent


def scenario_row(name: str, problem: Any, other: Any) -> tuple[dict[str, Any], Any]:
    f0, _, grad, by_family = problem.energy_and_grad(START, per_family=True)
    family = dict(zip(problem.family_names, by_family[:, 0], strict=True))
    demo = problem.relax("pgd", START, step=STEP, max_steps=STEPS, tol=0.0)
    best = problem.relax("lbfgsb", START, tol=1e-13, max_steps=20000)
    row = {"scenario": name, "energy_initial": float(f0),
           "grad_gate_closed": float(grad[0]), "grad_gate_link": float(family["link"]),
           "grad_gate_benefit": float(family["benefit"]), "grad_domain": float(grad[1]),
           "gate_30": float(demo.x[0]), "domain_30": float(demo.x[1]),
           "energy_30": float(demo.energy), "drop_30": float(f0 - demo.energy),
           "gate_star": float(best.x[0]), "domain_star": float(best.x[1]),
           "energy_star": float(best.energy), "drop_star": float(f0 - best.energy),
           "other_energy_at_30": float(other.energy(demo.x)[0])}
    return row, demo


def main(argv: Sequence[str] | None = None) -> pl.DataFrame:
    args = arguments("wormhole", __doc__ or "", argv)
    compiled = cfc.load(HERE / "wormhole.cfc").compile()
    problems = {name: compiled.bind(params=p) for name, p in SCENARIOS.items()}
    names = list(problems)
    rows, traces = [], {}
    for name, other in zip(names, reversed(names), strict=True):
        row, demo = scenario_row(name, problems[name], problems[other])
        rows.append(row)
        traces[name] = demo.trace
    frame = pl.DataFrame(rows)
    table = write_table(frame, args.out, "wormhole")

    one, two = rows
    print(f"activation ratio after 30 steps: {two['gate_30'] / one['gate_30']:.2f}x "
          f"(the README's 4.8x); energy-drop ratio {two['drop_30'] / one['drop_30']:.2f} "
          f"(its '24% more'); gradient at the closed gate {one['grad_gate_closed']:+.2f} vs "
          f"{two['grad_gate_closed']:+.2f}")
    fig, axes = new_figure(1, 2, width=7.0, height=2.4)
    for name, trace in traces.items():
        axes[0, 0].plot(trace["step"], trace["energy"], label=name)
    axes[0, 0].set_xlabel("step")
    axes[0, 0].set_ylabel("energy (its own function)")
    axes[0, 0].legend(loc="upper right", fontsize=6)
    x = np.arange(2)
    axes[0, 1].bar(x - 0.2, [r["gate_30"] for r in rows], 0.4, label="after 30 steps")
    axes[0, 1].bar(x + 0.2, [r["gate_star"] for r in rows], 0.4, label="true minimum")
    axes[0, 1].set_xticks(x, names, fontsize=6)
    axes[0, 1].set_ylabel("η_gate")
    axes[0, 1].legend(loc="upper left", fontsize=6)
    picture = save(fig, args.out, "wormhole")
    print(f"wrote {table} and {picture}")
    return frame


if __name__ == "__main__":
    main()
