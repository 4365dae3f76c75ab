# A size counts elements, so 2.5 is not allowed.
size N = 8
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(eta[i]; a = -0.5, b = 1.0)
