# an observable that is not registered
data score[N] from sequence_monotonicty(n = 32, seed = 42)
var x[N] in [-1, 1] = 0.0
factor local[i in 0..N] = compression(x[i]; t = score[i])
