# The --init file holds a 5,000-digit number: a located error, not Python's digit limit.
size N = 4
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(eta[i]; a = -0.5, b = 1.0)
