# An energy is not a function that gives an initial value.
size N = 8
var eta[N] in [0, 1] = quadratic(0.1, 0.2)
factor local[i in 0..N] = landau(eta[i]; a = -0.5, b = 1.0)
