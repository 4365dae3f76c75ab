"""How many cores this process may run on: the one count the compile's workers
(`codegen/prepare.py`), the parallel build (`runtime/build/units.py`) and the kernels'
threads (`runtime/backends/threads.py`) start from. The affinity mask, not os.cpu_count():
a process pinned to 2 of 16 cores (taskset, a container's cpuset, a sweep worker) has 2.
"""

from __future__ import annotations

import os


def available() -> int:
    """Cores in this process's affinity mask (os.cpu_count() where there is none), >= 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


__all__ = ["available"]
