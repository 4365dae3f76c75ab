# A range filter needs a comparison, not a number.
size N = 8
var eta[N] in [0, 1] = 0.5
factor odd[i in 0..N if i % 2] = landau(eta[i]; a = -0.5, b = 1.0)
