# Sequence redemption: a sequence of positions whose local evidence is mostly good, with
# one bad position D. Forward hinges let later, well-ordered positions "redeem" earlier
# ones (an earlier position is penalised for lagging a later one), and a gate opens a
# repair of position D only if its benefit pays for the gate's own cost.
model sequence_redemption
size N = 64
size D = 20                      # the position with bad local evidence
param a = 0.2                    # local Landau curvature (alone, a position stays low)
param b = 0.3
param evidence = 0.35            # the field h pulling every position towards order
param dip = -0.6                 # extra field at position D: its local evidence is bad
param benefit = 0.3              # the gate's energy drop per unit opening (delta)
var eta[N] in [0, 1] = 0.5
var gate in [0, 1] = 0.0
init eta[i in 0..N] = hazard(0.1 * evidence - 0.05, k = 10)
factor local[i in 0..N]    = landau(eta[i]; a = a, b = b, h = evidence)
factor bad                 = landau(eta[D]; a = 0, b = 0, h = dip)
factor chain[i in 0..N-1]  = quadratic(eta[i], eta[i+1]; w = 0.5)
factor redeem[i in 0..N-4 if i % 4 == 0] = asym_hinge(eta[i], eta[i+4]; w = 2.0, beta = 0.9)
factor gate_cost           = gate_local(gate; a = 0.1, b = 0.1)
factor open                = gate_benefit(gate; w = 1.0, delta = benefit)
factor repair              = directed_hinge(eta[D], gate; w = 0.5)
weight chain = 0.5
