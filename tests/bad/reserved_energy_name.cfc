# "all" would give the energy a kernel cfc_eg_all, the fixed entry point that runs every family.
model reserved
var x[4] in [0, 1] = 0.5
energy all(u; t = 0.5) = (u - t)^2
factor f[i in 0..4] = all(x[i])
