# The research note's wormhole demo (SEED_SPEC 6.12): a gate module and a domain module,
# a quadratic link between them and, in scenario 2, a gate benefit. Scenario 1 is
# w_quad = 1, w_benefit = 0; scenario 2 is w_quad = 0.5, w_benefit = 2, delta = 0.3.
# The two scenarios are two different energy functions.
model wormhole
param w_quad = 1.0
param w_benefit = 0.0
param delta = 0.3
var gate in [0, 1] = 0.0
var domain in [0, 1] = 0.5
factor gate_local   = gate_local(gate; a = 0.2, b = 0.1)
factor domain_local = gate_local(domain; a = 0.3, b = 0.2)
factor link         = quadratic(gate, domain; w = w_quad)
factor benefit      = gate_benefit(gate; w = w_benefit, delta = delta)
