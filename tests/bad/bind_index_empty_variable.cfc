# An index into a variable with no elements at these sizes.
size N = 0
var eta[N] in [0, 1] = 0.5
var g in [0, 1] = 0.5
factor link = quadratic(g, eta[0])
