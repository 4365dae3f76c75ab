"""Sweeps: a grid of sizes and parameters x seeds, each point relaxed as a Dask task.

`grid.py` parses the axes, `task.py` is what a worker runs for one point, `engine.py`
schedules the points and `table.py` writes the rows to Parquet with provenance.
"""
