# 1/0 has no value: SymPy turns it into complex infinity, which C cannot print.
var eta in [0, 1] = 0.5
energy e(x) = x/0
factor f = e(eta)
