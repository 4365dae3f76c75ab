# Grid percolation with energy-gated shortcuts (issue 9): grid_percolation.cfc, but each
# shortcut is optional and must pay for itself. A shortcut strains its two cells apart
# (w (x - y)^2) and earns a reward for the order it carries between them (-r x y), so one
# between two ordered cells saves energy and one to a disordered cell does not. The runtime
# relaxes without the shortcuts, then admits each one only if its confirmed saving beats
# its price: dF < -tau - price.
#   cfc run examples/experiments/grid_expansion.cfc --data shortcuts=examples/grid_shortcuts.npy --json
model grid_expansion
size L = 16
param a = 0.3
param w = 0.5
param reward = 0.6               # r: what a shortcut earns per unit of order at both ends
param price = 0.002              # the declared cost of each shortcut instance
data shortcuts[S, 2] : int       # pairs of flat cell indices i*L + j
var x[L, L] in [0, 1] = 0.2
energy carry(x, y; w = 0.5, r = 0.6) = w * (x - y)^2 - r * x * y
factor site[i in 0..L, j in 0..L]    = landau(x[i, j]; a = a, b = 0.5, h = 0.05)
factor right[i in 0..L, j in 0..L-1] = quadratic(x[i, j], x[i, j+1]; w = w)
factor down[i in 0..L-1, j in 0..L]  = quadratic(x[i, j], x[i+1, j]; w = w)
factor shortcut[e in 0..S] =
    carry(x[shortcuts[e, 0] // L, shortcuts[e, 0] % L],
          x[shortcuts[e, 1] // L, shortcuts[e, 1] % L]; w = w, r = reward)
    gated per instance cost price
factor source = order(x[0, 0]; a = 4.0, b = 0.0)
