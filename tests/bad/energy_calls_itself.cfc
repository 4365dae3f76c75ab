var x[2]
energy e(x; k = 1) = k*x^2 + e(x; k = 2)
factor f[i in 0..2] = e(x[i])
