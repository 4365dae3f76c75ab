"""Experiment 6.6, the sequence-gating hypothesis, at the research settings, answered exactly.

Research setup (SEED_SPEC 6.6): n 64, dip -0.4, noise 0.01, 20 trials from seed 7; delta =
max(0, exact repair gain); gate_local(a 0.2, b 0.3), benefit w 0.9; hard repair if the
relaxed gate > 0.5. Relaxed twice on sequence_gate.cfc: as the research code (benefit always
on, expansion=False) and energy-gated at cost 0.05. Then the benefit w*delta and the cost at
which the gate would open are found by bisection on the same model.

    python examples/experiments/gating_hypothesis.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

import cfc_dsl as cfc
from cfc_dsl.runtime.observables.sequence import dipped_ramp, monotonicity_score, repair_gain

MODEL = Path(__file__).with_name("sequence_gate.cfc")
NAME = "gating_hypothesis"
W, COST, OPEN = 0.9, 0.05, 0.5
RESEARCH = {"gate_final_mean": 0.025, "gate_final_max": 0.093, "redemption_mean": -0.0002,
            "w_delta": 0.009}


def relax(compiled: Any, delta: float, cost: float, score: float = 1.0,
          gated: bool = False) -> Any:
    problem = compiled.bind(params={"delta": delta, "w": W, "cost": cost, "score": score})
    return problem.relax(solver="newton", expansion=None if gated else False)


def bisect(opens: Any, lo: float, hi: float, steps: int = 40) -> float:
    """The boundary of a monotone predicate: opens(lo) is False, opens(hi) is True."""
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if opens(mid) else (mid, hi)
    return hi


def run(count: int) -> tuple[pl.DataFrame, dict[str, float]]:
    compiled = cfc.load(str(MODEL)).compile()
    rows = []
    for t in range(count):
        x = dipped_ramp(64, -0.4, 20, 0.01, 7 + t)
        delta = max(0.0, repair_gain(x, 20))
        score = monotonicity_score(x)
        plain = relax(compiled, delta, COST, score)
        gated = relax(compiled, delta, COST, score, gated=True)
        gate = float(plain.values["gate"])
        rows.append({"trial": t, "delta": delta, "w_delta": W * delta, "score": score,
                     "energy_initial": float(plain.result.energy_initial),
                     "energy_final": float(plain.energy), "gate_final": gate,
                     "opened": gate > OPEN, "redemption": delta if gate > OPEN else 0.0,
                     "gated_admitted": bool(gated.coordination.admitted["benefit"]),
                     "gated_dF": float(gated.coordination.decisions[0].dF)})
    table = pl.DataFrame(rows)
    # what it would take: the gate opens past 0.5 / the gated benefit is admitted at cost 0.05
    delta_open = bisect(lambda d: float(relax(compiled, d, COST).values["gate"]) > OPEN,
                        0.0, 2.0)
    delta_admit = bisect(lambda d: bool(relax(compiled, d, COST, gated=True)
                                        .coordination.admitted["benefit"]), 0.0, 2.0)
    typical = float(table["delta"].mean())
    cost_admit = -float(relax(compiled, typical, 1.0, gated=True).coordination.decisions[0].dF)
    return table, {"w_delta_to_open": W * delta_open, "w_delta_to_admit_at_cost": W * delta_admit,
                   "cost_below_which_admitted": cost_admit, "delta_mean": typical}


def figure(table: pl.DataFrame, limits: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.plot(table["w_delta"], table["gate_final"], "o", label="relaxed gate per trial")
    ax.axvline(limits["w_delta_to_open"], color="tab:red", ls=":",
               label=f"gate > 0.5 needs w·Δ ≥ {limits['w_delta_to_open']:.3f}")
    ax.axhline(OPEN, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlim(table["w_delta"].min() / 2, limits["w_delta_to_open"] * 2)
    ax.set_ylim(0, 1)
    ax.set_xlabel("benefit w·Δ")
    ax.set_ylabel("relaxed gate")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/experiments") / NAME)
    parser.add_argument("--quick", action="store_true", help="5 trials instead of 20")
    args = parser.parse_args(argv)
    table, limits = run(5 if args.quick else 20)
    args.out.mkdir(parents=True, exist_ok=True)
    table.write_csv(args.out / "trials.csv")
    figure(table, limits, args.out / "gate.png")
    report = {"gate_final_mean": float(table["gate_final"].mean()),
              "gate_final_max": float(table["gate_final"].max()),
              "opened": int(table["opened"].sum()), "admitted": int(table["gated_admitted"].sum()),
              "redemption_mean": float(table["redemption"].mean()),
              "w_delta_mean": float(table["w_delta"].mean()), **limits,
              "research_rerun": RESEARCH}
    (args.out / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
