# Grid percolation with shortcuts: an L x L grid of order parameters with nearest-neighbour
# couplings, plus sparse non-local shortcut edges read from a data file. A seed cell is
# held at order; shortcuts carry order across the grid faster than the bonds alone.
#   cfc run examples/grid_percolation.cfc --data shortcuts=examples/grid_shortcuts.npy
model grid_percolation
size L = 16
param a = 0.3
param w = 0.5
data shortcuts[S, 2] : int       # pairs of flat cell indices i*L + j
var x[L, L] in [0, 1] = 0.2
factor site[i in 0..L, j in 0..L]    = landau(x[i, j]; a = a, b = 0.5, h = 0.05)
factor right[i in 0..L, j in 0..L-1] = quadratic(x[i, j], x[i, j+1]; w = w)
factor down[i in 0..L-1, j in 0..L]  = quadratic(x[i, j], x[i+1, j]; w = w)
factor shortcut[e in 0..S] =
    quadratic(x[shortcuts[e, 0] // L, shortcuts[e, 0] % L],
              x[shortcuts[e, 1] // L, shortcuts[e, 1] % L]; w = w)
factor source = order(x[0, 0]; a = 4.0, b = 0.0)
