# An energy body sees only its slots and parameters.
size N = 8
param a = -0.5
var eta[N] in [0, 1] = 0.5
energy well(x) = a*x^2 + x^4
factor local[i in 0..N] = well(eta[i])
