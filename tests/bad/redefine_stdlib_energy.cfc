# landau is already in the standard library.
size N = 8
var eta[N] in [0, 1] = 0.5
energy landau(x; a) = a*x^2
factor local[i in 0..N] = landau(eta[i]; a = -0.5)
