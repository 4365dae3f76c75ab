# A parameter cannot fill an energy's variable slot.
size N = 8
param target = 0.3
var eta[N] in [0, 1] = 0.5
factor pull[i in 0..N] = quadratic(eta[i], target; w = 1.0)
