# The weight divides by zero.
size N = 8
param p = 2.5
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(eta[i]; a = -0.5, b = 1.0)
weight local = p / 0
