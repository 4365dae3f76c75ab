# A 150-byte .npy whose header claims 10^12 elements: refused before anything is allocated.
size N = 8
data score[N]
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(eta[i]; a = score[i], b = 1.0)
