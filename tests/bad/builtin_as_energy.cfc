# A factor calls an energy, not a built-in function.
size N = 8
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] = relu(eta[i])
