# The init range runs one past the end of eta.
size N = 4
var eta[N] in [0, 1] = 0.5
init eta[i in 0..N+1] = 0.1
factor local[i in 0..N] = landau(eta[i]; a = -0.5, b = 1.0)
