# i/2 is real division; an index must be an integer.
size N = 8
var eta[N] in [0, 1] = 0.5
factor half[i in 0..N] = quadratic(eta[i], eta[i/2]; w = 1.0)
