# the number of stages is a literal, not a size
size N = 8
param s = 0.1
var x[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(x[i]; a = -0.5, b = 1.0)
factor chain[i in 0..N-1] = quadratic(x[i], x[i+1]; w = 0.5)
weight chain = 1.0 from 0.1 over N
