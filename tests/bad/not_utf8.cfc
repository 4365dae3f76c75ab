# café in Latin-1: the file is not UTF-8.
var eta in [0, 1] = 0.5
