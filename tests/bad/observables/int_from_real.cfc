# an integer declaration from a real-valued observable
data score[N] : int from sequence_monotonicity(n = 32)
var x[N] in [-1, 1] = 0.0
factor local[i in 0..N] = compression(x[i]; t = score[i])
