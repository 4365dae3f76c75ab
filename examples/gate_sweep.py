"""Energy-gated expansion, done as an energy: when does the gate in sequence_redemption open?

The research code's `energy_gated_expansion` experiment measured this with noisy sampled
scores. Here the gate is a variable of one fixed energy, so the answer is exact: the gate
opens as far as the benefit per unit opening (delta) pays for the gate's own cost
(gate_local) and for the repair hinge it pulls on the bad position D, which it lifts.
gate_local's cost is quadratic, so its marginal cost at 0 is 0: the gate stays shut at
delta = 0 and opens a little for any delta > 0. A linear cost (landau with h < 0) would
give the gate a threshold.

    python examples/gate_sweep.py            # a table of gate opening and energies
"""

from __future__ import annotations

from pathlib import Path

import cfc_dsl as cfc

MODEL = Path(__file__).with_name("sequence_redemption.cfc")
BENEFITS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8)


def sweep(benefits: tuple[float, ...] = BENEFITS) -> list[dict[str, float]]:
    compiled = cfc.load(str(MODEL)).compile()  # one compile serves every benefit
    rows = []
    for benefit in benefits:
        result = compiled.bind(params={"benefit": benefit}).relax()
        values = result.values
        d = result.problem.bound.sizes["D"]  # the bad position
        rows.append({"benefit": benefit, "gate": float(values["gate"]),
                     "eta_D": float(values["eta"][d]), "energy": result.energy,
                     "steps": result.steps})
    return rows


def main() -> None:
    print(f"{'benefit':>8} {'gate':>8} {'eta[D]':>8} {'energy':>14} {'steps':>6}")
    for row in sweep():
        print(f"{row['benefit']:>8.2f} {row['gate']:>8.4f} {row['eta_D']:>8.4f} "
              f"{row['energy']:>14.8f} {row['steps']:>6d}")


if __name__ == "__main__":
    main()
