# A no-break space pasted from a web page.
size N = 4
var eta[N] in [0, 1] = 0.5
