# edges is declared with two dimensions but the file holds a 1-D array, so M is never bound.
size N = 4
data edges[K, M] : int
var eta[N] in [0, 1] = 0.5
factor net[e in 0..K] = quadratic(eta[edges[e, 0]], eta[edges[e, 1]])
