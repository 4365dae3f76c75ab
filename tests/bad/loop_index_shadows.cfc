# The loop index N hides the size N.
size N = 8
var eta[N] in [0, 1] = 0.5
factor local[N in 0..8] = landau(eta[N]; a = -0.5, b = 1.0)
