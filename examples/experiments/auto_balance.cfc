# The research note's auto-balance demo (SEED_SPEC 6.7): a sequence module and a gate
# (cost 0.1, k 12, a 0.4, b 0.6), a gate benefit (w 1.2) and a quadratic link (w 0.3),
# under the demo's base term weights. The starting values and the benefit's delta come
# from a dipped ramp (auto_balance.py computes them exactly and passes them as params).
model auto_balance
param seq0 = 0.9         # the sequence's monotonicity score
param gain = 0.0         # the repair's gain: the gate's net is gain - cost
param delta = 0.0        # the benefit signal (the same gain)
var seq in [0, 1]
var gate in [0, 1]
init seq = seq0
init gate = hazard(gain - 0.1, k = 12)
factor sequence = order(seq; a = 1.0, b = 1.0)
factor gate_cost = gate_local(gate; a = 0.4, b = 0.6)
factor benefit = gate_benefit(gate; w = 1.2, delta = delta)
factor link = quadratic(seq, gate; w = 0.3)
weight sequence = 0.25
weight gate_cost = 2.5
weight benefit = 1.2
weight link = 0.4
