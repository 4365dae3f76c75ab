# i * 2^62 passes the 64-bit range for i >= 2; it used to wrap and index the wrong element.
size N = 4
var eta[N] in [0, 1] = 0.5
factor f[i in 0..N] = quadratic(eta[i], eta[((i * 4611686018427387904) // 4611686018427387904) % N])
