# 'alpah' is a typo for the parameter 'alpha'.
size N = 8
param alpha = -0.5
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(eta[i]; a = alpah, b = 1.0)
