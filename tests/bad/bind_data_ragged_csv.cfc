# The CSV rows have different numbers of columns.
size N = 3
data score[N, 2]
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(eta[i]; a = score[i, 0], b = 1.0)
