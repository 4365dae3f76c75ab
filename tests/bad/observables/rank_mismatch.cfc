# the observable's rank disagrees with the declaration
data score[N, 2] from sequence_monotonicity(n = 32, seed = 42)
var x[N] in [-1, 1] = 0.0
factor local[i in 0..N] = compression(x[i]; t = score[i, 0])
