# A range filter cannot depend on a variable.
size N = 8
var eta[N] in [0, 1] = 0.5
factor half[i in 0..N if eta[i] > 0.5] = landau(eta[i]; a = -0.5, b = 1.0)
