# sqrt(-1) is imaginary; the C had referred to I and failed to compile.
var eta in [0, 1] = 0.5
energy e(x) = sqrt(-1)*x
factor f = e(eta)
