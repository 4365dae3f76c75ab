# the source is a call
data score[N] from 0.5
var x[N] in [-1, 1] = 0.0
factor local[i in 0..N] = compression(x[i]; t = score[i])
