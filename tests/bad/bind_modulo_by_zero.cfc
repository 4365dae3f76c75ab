# K = 0 makes i % K a modulo by zero.
size N = 8
size K = 0
var eta[N] in [0, 1] = 0.5
factor ring[i in 0..N] = quadratic(eta[i], eta[i % K])
