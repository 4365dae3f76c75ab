# The --at file nests 70 lists deep: refused before the JSON parser recurses.
size N = 4
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(eta[i]; a = -0.5, b = 1.0)
