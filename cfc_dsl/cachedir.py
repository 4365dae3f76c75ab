"""Where cfc keeps what it caches, and whether a file there is ours alone.

One rule for every cache: the parser's tables (`parser.py`), the checked models
(`modelcache.py`) and the compiled kernels (`runtime/build/cache.py`) all live under
`cache_root()`. This module imports nothing heavy, so a cache hit pays nothing for it, and
it sits in the language layer, so both the language and the runtime can use it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def cache_root() -> Path:
    """`CFC_CACHE_DIR`, else `$XDG_CACHE_HOME/cfc`, else `~/.cache/cfc`."""
    env = os.environ.get("CFC_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cfc"


def private(path: Path, is_dir: bool) -> bool:
    """Whether `path` is ours alone: not a link, the right kind, owned by this user, and
    writable by no one else (a folder: not even readable by others)."""
    info = os.lstat(path)
    kind_ok = stat.S_ISDIR(info.st_mode) if is_dir else stat.S_ISREG(info.st_mode)
    mask = 0o077 if is_dir else 0o022
    return kind_ok and info.st_uid == os.getuid() and not info.st_mode & mask


__all__ = ["cache_root", "private"]
