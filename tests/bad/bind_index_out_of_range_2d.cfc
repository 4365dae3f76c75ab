# The second index runs one past the end of x's second dimension.
size N = 4
var x[N, N] in [0, 1] = 0.5
factor right[i in 0..N, j in 0..N] = quadratic(x[i, j], x[i, j+1])
