# A slot takes one variable element, not an expression of variables.
size N = 8
var eta[N] in [0, 1] = 0.5
factor link[i in 0..N-1] = quadratic(eta[i], 1 - eta[i+1]; w = 1.0)
