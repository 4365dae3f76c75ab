# 'landou' is a typo for the standard-library energy 'landau'.
size N = 8
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = landou(eta[i]; a = -0.5, b = 1.0)
