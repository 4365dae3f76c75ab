# A Greek letter as a name.
size N = 4
var η[N] in [0, 1] = 0.5
