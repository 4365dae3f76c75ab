# An empty CSV file has no rows (and no shape).
size N = 4
data edges[M, 2] : int
var eta[N] in [0, 1] = 0.5
factor link[e in 0..M] = quadratic(eta[edges[e, 0]], eta[edges[e, 1]])
