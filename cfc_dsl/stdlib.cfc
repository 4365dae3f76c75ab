# The cfc standard library of energies (DESIGN.md section 3). Each keeps the meaning it
# has in the "Complexity from Constraints" research code; see docs/language.md.
# Slots before ';' are the differentiated variables, names after ';' are parameters.

energy landau(x; a, b, h = 0) = a*x^2 + b*x^4 - h*x
energy order(x; a = 1, b = 1) = a*(1 - x)^2 + b*(1 - x)^4
energy gate_local(x; a = 0.1, b = 0.1) = a*x^2 + b*x^4
energy compression(x; a = 1, b = 0, t = 1) = a*(x - t)^2 + b*(x - t)^4
energy quadratic(x, y; w = 1) = w*(x - y)^2
energy directed_hinge(x, y; w = 1) = w*relu(y - x)^2
energy asym_hinge(x, y; w = 1, alpha = 1, beta = 1) = w*relu(beta*y - alpha*x)^2
energy margin_hinge(x, y; w = 1, m = 0) = w*relu(abs(x - y) - m)
energy gate_benefit(g; w = 1, delta = 0) = -w*g*delta
energy damped_gate_benefit(g; w = 1, delta = 0, damping = 1, p = 1, pos = 1, neg = 1) =
    -w*damping*g^p*(pos*relu(delta) - neg*relu(-delta))
