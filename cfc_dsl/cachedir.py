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


def writable_by_others(path: Path, mask: int = 0o022) -> str | None:
    """Who else could have written `path` (not followed if a link): None when it is this
    user's and its mode has none of `mask`'s bits (group and other write by default). cfc
    loads compiled code and cached tables from here, so what someone else can write is
    never trusted."""
    if not hasattr(os, "getuid"):
        return None
    info = os.lstat(path)
    if info.st_uid != os.getuid():
        return f"it belongs to user id {info.st_uid}, not to you"
    if info.st_mode & mask:
        return f"its mode {oct(info.st_mode & 0o777)} lets others write it"
    return None


def private(path: Path, is_dir: bool) -> bool:
    """Whether `path` is ours alone: not a link, the right kind, owned by this user, and
    writable by no one else (a folder: not even readable by others)."""
    mode = os.lstat(path).st_mode
    kind_ok = stat.S_ISDIR(mode) if is_dir else stat.S_ISREG(mode)
    return kind_ok and writable_by_others(path, 0o077 if is_dir else 0o022) is None


__all__ = ["cache_root", "private", "writable_by_others"]
