# --set gives a size beyond 64-bit integers.
size N = 8
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(eta[i]; a = -0.5, b = 1.0)
