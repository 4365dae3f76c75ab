# The research code's "dense N" scenario (SEED_SPEC section 6): a ring of N gating modules
# with nearest and second-neighbour quadratic links and a gate benefit on each link.
# For N = 16 the true minimum is E* = -0.010651 with every eta ~ 0.0665.
model seed_dense
size N = 16
var eta[N] in [0, 1]
init eta[i in 0..N] = hazard(0.02 * (i % 5) - 0.1, k = 10)
factor local[i in 0..N]   = gate_local(eta[i]; a = 0.15, b = 0.05)
factor ring[i in 0..N]    = quadratic(eta[i], eta[(i + 1) % N]; w = 0.6)
factor benefit[i in 0..N] = gate_benefit(eta[(i + 1) % N]; w = 0.4, delta = 0.05)
factor second[i in 0..N]  = quadratic(eta[i], eta[(i + 2) % N]; w = 0.3)
