# C-style '&&' instead of 'and' in a range filter.
size N = 8
var eta[N] in [0, 1] = 0.5
factor link[i in 0..N-1 if i > 0 && i < 6] = quadratic(eta[i], eta[i+1])
