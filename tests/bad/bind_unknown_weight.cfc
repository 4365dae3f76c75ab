# weight.FAMILY needs a declared family; it is link, not lnk.
size N = 8
var eta[N] in [0, 1] = 0.5
factor link[i in 0..N-1] = quadratic(eta[i], eta[i+1])
