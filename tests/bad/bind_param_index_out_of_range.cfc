# h[i+1] reads past the end of the parameter array h.
size N = 4
param h[N] = 0.1
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(eta[i]; a = -0.5, b = 1.0, h = h[i+1])
