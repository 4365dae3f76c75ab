# init names a variable that does not exist.
size N = 8
var eta[N] in [0, 1] = 0.5
init eat[i in 0..N] = 0.1
factor local[i in 0..N] = landau(eta[i]; a = -0.5, b = 1.0)
