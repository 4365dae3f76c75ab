# Data types are int and real.
size N = 8
data score[N] : float
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(eta[i]; a = score[i], b = 1.0)
