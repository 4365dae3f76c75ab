"""The solvers: `registry` (names, options, needs), `base` (the shared loop), and one module
per solver. Importing the package imports no solver: the registry imports a solver's module
the first time that solver is looked up (issue 12: a run loads only the solver it uses)."""
