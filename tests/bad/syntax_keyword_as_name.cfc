# 'data' is a keyword, so it cannot name a variable.
size N = 8
var data[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(data[i]; a = -0.5, b = 1.0)
