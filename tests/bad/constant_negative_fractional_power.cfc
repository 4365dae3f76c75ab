# a fractional power of a negative number is complex.
var eta in [0, 1] = 0.5
energy e(x) = (-8)^(1/3)*x
factor f = e(eta)
