param a = 1
var x[2]
energy e(x; k = a) = k*x^2
factor f[i in 0..2] = e(x[i])
