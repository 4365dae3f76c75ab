# each energy calls the previous one twice: 2^13 copies once inlined.
var eta in [0, 1] = 0.5
energy e0(x) = x^2
energy e1(x) = e0(x) + x*e0(x)
energy e2(x) = e1(x) + x*e1(x)
energy e3(x) = e2(x) + x*e2(x)
energy e4(x) = e3(x) + x*e3(x)
energy e5(x) = e4(x) + x*e4(x)
energy e6(x) = e5(x) + x*e5(x)
energy e7(x) = e6(x) + x*e6(x)
energy e8(x) = e7(x) + x*e7(x)
energy e9(x) = e8(x) + x*e8(x)
energy e10(x) = e9(x) + x*e9(x)
energy e11(x) = e10(x) + x*e10(x)
energy e12(x) = e11(x) + x*e11(x)
energy e13(x) = e12(x) + x*e12(x)
factor f = e13(eta)
