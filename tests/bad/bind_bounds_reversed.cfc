# The lower bound is above the upper bound.
size N = 8
var eta[N] in [1, 0] = 0.5
factor local[i in 0..N] = landau(eta[i]; a = -0.5, b = 1.0)
