"""cfc: a compiler for energy-based factor graphs.

    import cfc_dsl as cfc
    model = cfc.load("chain.cfc")
    problem = model.compile().bind(sizes={"N": 1000})
    result = problem.relax()

Errors are `cfc.CfcError`; catch a stage's errors with its subclass (`CfcSyntaxError`,
`CfcCheckError`, `CfcBindError`, `CfcArgumentError`, `CfcNumericError`, `CfcEnvironmentError`).
"""

from cfc_dsl.api import Model, load, loads
from cfc_dsl.diagnostics import (
    CfcArgumentError,
    CfcBindError,
    CfcCheckError,
    CfcEnvironmentError,
    CfcError,
    CfcNumericError,
    CfcSyntaxError,
)
from cfc_dsl.version import __version__

__all__ = [
    "CfcArgumentError",
    "CfcBindError",
    "CfcCheckError",
    "CfcEnvironmentError",
    "CfcError",
    "CfcNumericError",
    "CfcSyntaxError",
    "Model",
    "__version__",
    "load",
    "loads",
]
