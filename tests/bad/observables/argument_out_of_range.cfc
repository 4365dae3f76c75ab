# the observable's own range check
data score[N] from sequence_monotonicity(n = 32, position = 40)
var x[N] in [-1, 1] = 0.0
factor local[i in 0..N] = compression(x[i]; t = score[i])
