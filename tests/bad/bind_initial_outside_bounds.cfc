# The initial value 2 is outside [0, 1].
size N = 8
var eta[N] in [0, 1] = 2
factor local[i in 0..N] = landau(eta[i]; a = -0.5, b = 1.0)
