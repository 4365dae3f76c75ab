# A filter compares with '==', not '='.
size N = 8
var eta[N] in [0, 1] = 0.5
factor even[i in 0..N if i % 2 = 0] = landau(eta[i]; a = -0.5, b = 1.0)
