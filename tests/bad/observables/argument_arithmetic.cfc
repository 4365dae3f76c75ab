# arguments are literals: no arithmetic
data score[N] from sequence_monotonicity(n = 16 * 2)
var x[N] in [-1, 1] = 0.0
factor local[i in 0..N] = compression(x[i]; t = score[i])
