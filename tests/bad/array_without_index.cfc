# eta is an array; a slot takes one element of it.
size N = 8
var eta[N] in [0, 1] = 0.5
factor local = landau(eta; a = -0.5, b = 1.0)
