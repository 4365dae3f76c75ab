# '//' is integer division; a is a real parameter.
size N = 8
param a = -0.5
param half = a // 2
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(eta[i]; a = half, b = 1.0)
