# A size cannot depend on a variable.
var gate in [0, 1] = 0.5
size N = gate
factor open = gate_benefit(gate; w = 1.0, delta = 0.3)
