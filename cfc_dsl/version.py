"""The cfc version; stamped into generated code, cache keys and certificates."""

__version__ = "0.1.0"
