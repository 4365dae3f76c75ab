# The init rule puts eta[5] at 1.25, above its upper bound 1.
size N = 8
var eta[N] in [0, 1] = 0.5
init eta[i in 0..N] = 0.25 * i
factor local[i in 0..N] = landau(eta[i]; a = -0.5, b = 1.0)
