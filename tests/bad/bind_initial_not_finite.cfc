# sqrt(-1) is not a number.
size N = 8
var eta[N] in [0, 1] = sqrt(-1)
factor local[i in 0..N] = landau(eta[i]; a = -0.5, b = 1.0)
