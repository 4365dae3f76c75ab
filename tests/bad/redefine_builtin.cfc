# exp is a built-in function.
size N = 8
param exp = 1
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(eta[i]; a = exp, b = 1.0)
