# landau takes one variable; two are given before ';'.
size N = 8
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N-1] = landau(eta[i], eta[i+1]; a = -0.5, b = 1.0)
