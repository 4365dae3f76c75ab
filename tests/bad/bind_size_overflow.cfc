# A size beyond 64-bit integers.
size N = 99999999999999999999999
var eta[N] in [0, 1] = 0.5
