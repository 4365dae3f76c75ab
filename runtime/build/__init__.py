"""Build stage: rendered kernels -> a loaded library, cached by content hash.

`pipeline.py` is the one pipeline for every target; `targets.py` (C) and `cuda.py` (CUDA)
hold the per-target configuration; `toolchain.py` finds the C compiler; `cache.py` keys
and publishes entries.
"""
