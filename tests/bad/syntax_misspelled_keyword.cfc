# 'vra' is a typo for the keyword 'var'.
size N = 8
vra eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = landau(eta[i]; a = -0.5, b = 1.0)
