# The last instance reaches past the end: i + 1 == N when i == N - 1.
size N = 8
var eta[N] in [0, 1] = 0.5
factor link[i in 0..N] = quadratic(eta[i], eta[i+1]; w = 0.5)
