# Source-cluster model for the connectivity threshold (SEED_SPEC 6.3): each cell's order is
# pulled to 1 only through open bonds from one source cell on the largest cluster, and a
# small linear decay pulls every cell to 0. At the minimum a cell is ~1 iff an open path
# joins it to the source, so the mean order is the giant-component fraction.
# Data (one seed): every bond or shortcut any setting opens, and which are open per setting
# (C: 0 bonds only, 1 with shortcuts; K: index of p), plus the source cell per setting.
#   python examples/experiments/percolation_threshold.py
model percolation_cluster
size L = 50
size K = 0                       # index of p in the experiment's grid
size C = 0                       # 0: bonds only, 1: bonds plus shortcuts
param w = 1.0                    # coupling along an open bond
param pull = 1.0                 # the source term on the seed cell
param decay = 1e-8               # linear decay on every cell (h = -decay); see below
data pairs[E, 2] : int           # cell pairs i*L + j
data open[2, P, E]               # 1.0 where the pair is open at (C, K)
data source[2, P] : int          # the largest cluster's smallest cell at (C, K)
var x[L, L] in [0, 1] = 0.0
factor bond[e in 0..E] =
    quadratic(x[pairs[e, 0] // L, pairs[e, 0] % L], x[pairs[e, 1] // L, pairs[e, 1] % L];
              w = w * open[C, K, e])
factor seed = order(x[source[C, K] // L, source[C, K] % L]; a = pull, b = 0)
factor decay[i in 0..L, j in 0..L] = landau(x[i, j]; a = 0, b = 0, h = -decay)
# Why these terms: without the decay a cluster with no path to the source is a flat valley
# (any constant is a minimum) and would keep its initial value; a linear decay (rather than
# a x^2) makes 0 the unique minimum there with a strictly positive gradient on the bound, so
# solvers identify it exactly. On the source's cluster the decay lowers the order by about
# decay * |cluster| * (resistance to the source) / w: 1e-8 keeps that below 1e-4 on 50 x 50.
