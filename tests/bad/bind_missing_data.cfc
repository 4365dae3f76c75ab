# score is declared but no --data gives it.
size N = 8
data score[N]
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(eta[i]; a = score[i], b = 1.0)
