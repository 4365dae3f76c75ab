# A variable cannot be an energy parameter.
size N = 8
var eta[N] in [0, 1] = 0.5
var gate in [0, 1] = 0.0
factor local[i in 0..N] = landau(eta[i]; a = gate, b = 1.0)
