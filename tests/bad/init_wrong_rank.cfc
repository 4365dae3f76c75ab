# x has two dimensions, so its init needs two ranges.
size N = 4
var x[N, N] in [0, 1] = 0.5
init x[i in 0..N] = 0.1
factor right[i in 0..N, j in 0..N-1] = quadratic(x[i, j], x[i, j+1])
