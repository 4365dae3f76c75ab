# The research code's sequence gate (SEED_SPEC 6.5, 6.6): a sequence module whose order is
# pulled to 1, a gate with its own Landau cost, and a benefit -w * delta * gate for opening
# it, where delta is the exact monotonicity gain of repairing the dip (observables). The
# benefit is `gated cost cost`: cfc admits it only if the energy it saves beats the cost,
# which is where the research code's cost never reached the relaxed energy (SEED_SPEC 2.2).
#   python examples/experiments/gated_expansion.py; python .../gating_hypothesis.py
model sequence_gate
param delta = 0.006              # the gain a hard repair buys
param w = 0.9                    # the benefit coupling's weight
param cost = 0.05                # the gate's price
param k = 10                     # the hazard gate's steepness (initial value only)
param score = 0.95               # the sequence's monotonicity score (its initial order)
var seq in [0, 1] = 0.5
var gate in [0, 1] = 0.0
init seq = score
init gate = hazard(delta - cost, k = k)
factor sequence = order(seq; a = 1, b = 1)
factor gate_cost = gate_local(gate; a = 0.2, b = 0.3)
factor benefit = gate_benefit(gate; w = w, delta = delta) gated cost cost
