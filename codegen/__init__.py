"""Kernel IR, the SymPy C printer and rendering. No file I/O and no compilation here."""
