"""cfc: a compiler for energy-based factor graphs.

    import cfc_dsl as cfc
    model = cfc.load("chain.cfc")
    problem = model.compile().bind(sizes={"N": 1000})
    result = problem.relax()

Errors are `cfc.CfcError`; catch a stage's errors with its subclass (`CfcSyntaxError`,
`CfcCheckError`, `CfcBindError`, `CfcArgumentError`, `CfcNumericError`, `CfcEnvironmentError`).
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from cfc_dsl.api import Model, load, loads, sweep

# The facade is imported on first use, so `import cfc_dsl` (and every `cfc` command, which
# imports the package first) does not pay for the parser and checker until it needs them.
_FACADE = ("Model", "load", "loads", "sweep")


def __getattr__(name: str) -> Any:
    if name in _FACADE:
        from cfc_dsl import api

        return getattr(api, name)
    raise AttributeError(f"module 'cfc_dsl' has no attribute {name!r}")

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
    "sweep",
]
