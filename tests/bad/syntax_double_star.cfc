# '**' is not the power operator; '^' is.
size N = 8
param a = 2 ** 3
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(eta[i]; a = a, b = 1.0)
