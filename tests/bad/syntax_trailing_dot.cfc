# A number that ends in a point.
var eta in [0, 1.] = 0.5
