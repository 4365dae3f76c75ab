# The research code's "baseline" scenario (SEED_SPEC section 6): two gating modules,
# "seq" and "gate", a quadratic coupling and a gate benefit with delta = 0.08.
# Its true minimum with fixed weights is E* = -0.0025076 at eta ~ (0.0604, 0.0778).
model seed_baseline
var seq in [0, 1]
var gate in [0, 1]
init seq = hazard(0.0 - 0.1, k = 10)      # gain 0, cost 0.1 -> 0.2689
init gate = hazard(0.1 - 0.05, k = 10)    # gain 0.1, cost 0.05 -> 0.6225
factor seq_local  = gate_local(seq; a = 0.2, b = 0.3)
factor gate_local = gate_local(gate; a = 0.25, b = 0.35)
factor couple     = quadratic(seq, gate; w = 0.7)
factor benefit    = gate_benefit(gate; w = 0.8, delta = 0.08)
