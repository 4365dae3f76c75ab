# arguments are literals: no parameters
param s = 42
data score[N] from sequence_monotonicity(n = 32, seed = s)
var x[N] in [-1, 1] = 0.0
factor local[i in 0..N] = compression(x[i]; t = score[i])
