# quadratic couples two variables; only one is given.
size N = 8
var eta[N] in [0, 1] = 0.5
factor link[i in 0..N-1] = quadratic(eta[i]; w = 0.5)
