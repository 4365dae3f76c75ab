# 1e309 is past the largest double.
var eta in [0, 1] = 0.5
energy e(x) = x^1e309
factor f = e(eta)
