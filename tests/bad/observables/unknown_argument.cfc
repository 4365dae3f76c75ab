# an argument the observable does not take
data score[N] from sequence_monotonicity(n = 32, sed = 42)
var x[N] in [-1, 1] = 0.0
factor local[i in 0..N] = compression(x[i]; t = score[i])
