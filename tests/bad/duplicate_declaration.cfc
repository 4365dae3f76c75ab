# a is declared twice.
size N = 8
param a = -0.5
var eta[N] in [0, 1] = 0.5
param a = -0.3
factor local[i in 0..N] = landau(eta[i]; a = a, b = 1.0)
