# gate is a scalar variable and takes no index.
size N = 8
var gate in [0, 1] = 0.0
factor open[i in 0..N] = gate_benefit(gate[i]; w = 1.0, delta = 0.3)
