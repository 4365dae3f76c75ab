# The instances' energies are -inf (log 0) and +inf (-log 0): their sum is NaN, which the
# Python backend's exact sum (math.fsum) refuses; the NaN reporter names the family.
size N = 2
var v[N] in [0, 1] = 0.5
init v[i in 0..N] = i
energy odds(x) = log(x) - log(1 - x)
factor logit[i in 0..N] = odds(v[i])
