"""The solvers: `registry` (names, options, needs), `base` (the shared loop), and one module
per solver. Importing the package registers every solver, in menu order."""

from cfc_dsl.runtime.solvers import (  # noqa: F401  (registers them)
    admm,
    apg,
    auto,
    cd,
    certified,
    lbfgsb,
    newton,
    pgd,
    prox,
)
