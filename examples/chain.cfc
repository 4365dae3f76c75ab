# A chain of order parameters: each wants to order on its own (a < 0), and neighbours
# are coupled so the chain relaxes together. The DESIGN.md section 1 example.
model chain
size N = 64
param a = -0.5
param w = 0.8
var eta[N] in [0, 1] = 0.1
factor local[i in 0..N]  = landau(eta[i]; a = a, b = 1.0)
factor link[i in 0..N-1] = quadratic(eta[i], eta[i+1]; w = w)
