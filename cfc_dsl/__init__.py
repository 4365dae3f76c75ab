"""cfc: a compiler for energy-based factor graphs.

    import cfc_dsl as cfc
    model = cfc.load("chain.cfc")
    problem = model.compile().bind(sizes={"N": 1000})
    result = problem.relax()
"""

from cfc_dsl.version import __version__

__all__ = ["__version__", "load", "loads"]


def load(path: str):  # type: ignore[no-untyped-def]
    """Parse and check a .cfc file; returns a `Model` ready to `.compile()`."""
    from cfc_dsl.frontend import load_file

    return load_file(path)


def loads(text: str, name: str = "<string>"):  # type: ignore[no-untyped-def]
    """Parse and check .cfc source text."""
    from cfc_dsl.frontend import load_source

    return load_source(text, name)
