# An error on a line indented with tabs: the caret still points at the name.
size N = 4
var eta[N] in [0, 1] = 0.5
factor local[i in 0..N] =	landau(eta[i];	a = alhpa,	b = 1.0)
