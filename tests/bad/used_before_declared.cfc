# w is used on line 4 but declared on line 5.
size N = 8
var eta[N] in [0, 1] = 0.5
factor link[i in 0..N-1] = quadratic(eta[i], eta[i+1]; w = w)
param w = 0.8
