# 10^400 is an exact integer for SymPy but no double holds it (C and Python would disagree).
var eta in [0, 1] = 0.5
energy e(x) = 10^400 * x
factor f = e(eta)
