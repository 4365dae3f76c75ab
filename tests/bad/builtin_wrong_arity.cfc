# max takes two arguments.
size N = 8
data score[N]
var eta[N] in [0, 1] = 0.5
init eta[i in 0..N] = max(score[i])
factor local[i in 0..N] = landau(eta[i]; a = -0.5, b = 1.0)
