# log(0) is -infinity, not a number a kernel can use.
var eta in [0, 1] = 0.5
energy e(x) = log(0)*x
factor f = e(eta)
