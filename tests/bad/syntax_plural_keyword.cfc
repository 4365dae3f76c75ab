# The keyword is 'param', not 'params'.
size N = 8
params a = -0.5
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(eta[i]; a = a, b = 1.0)
