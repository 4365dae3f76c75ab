# log(0) makes a parameter of the first instance infinite.
size N = 8
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(eta[i]; a = log(i), b = 1.0)
