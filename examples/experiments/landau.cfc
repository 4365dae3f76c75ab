# The research note's Landau sweep (SEED_SPEC 6.2): one order parameter in a Landau well
# F = a eta^2 + b eta^4, relaxed from eta0. Its minimiser on [0, 1] is sqrt(-a / 2b) for
# a < 0 and 0 otherwise (for b >= -a / 2, so the root stays inside the box).
model landau
param a = -0.5
param b = 1.0
param eta0 = 0.1
var eta in [0, 1]
init eta = eta0
factor well = landau(eta; a = a, b = b)
