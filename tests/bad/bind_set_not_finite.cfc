# --set a=inf is not a usable parameter value.
param a = -0.5
var gate in [0, 1] = 0.5
factor open = gate_benefit(gate; w = a, delta = 0.3)
