"""Cache self-healing: verify an entry before its library is opened, quarantine what is damaged.

An entry is sound when its folder is a folder, its `entry.json` an object with every key the
loaders read, and its library matches the sha256 recorded at publication: a truncated `.so`
is caught here, before `dlopen` could fault on it. A damaged entry is moved aside (never
deleted blindly) and rebuilt. Staging folders left by a killed build are swept, and a full
or read-only cache folder is an environment error (exit 3) that names it and its free space.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from cfc_dsl.cachedir import writable_by_others
from cfc_dsl.diagnostics import CfcError, ErrorKind

REQUIRED_KEYS = ("module", "library", "cdef", "digest", "library_sha256")
ABI_SUFFIX = ".py"  # the C target's cffi ABI module (targets.ABI_SUFFIX): checked by sha256
QUARANTINE = ".quarantine"  # damaged entries go here, inside the cache folder
KEEP_QUARANTINED = 8  # the oldest beyond this many are deleted
STALE_SECONDS = 3600.0  # a staging folder whose build cannot be traced is stale after this
_STAGING = re.compile(r"\.tmp-(?P<digest>[0-9a-f]{12}|[0-9a-f]{64})-.+")
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plain_name(value: object) -> bool:
    return isinstance(value, str) and value not in ("", ".", "..") and "/" not in value \
        and "\\" not in value


def check_root(root: Path, default: bool = False) -> None:
    """Refuse a cache folder that someone else could write (exit 3, naming it). The default
    folder (`default`: no CFC_CACHE_DIR), when it is ours but group-writable (made under a
    umask of 002 by an older cfc), is made private instead: it holds nothing but cfc's own."""
    if not os.path.lexists(root):
        return
    why = writable_by_others(root)
    if why is not None and default and writable_by_others(root, mask=0) is None:
        try:
            os.chmod(root, 0o700)
            why = writable_by_others(root)
        except OSError:
            pass
    if why is not None:
        raise CfcError(ErrorKind.ENVIRONMENT, f"the cache folder {root} is not private: {why}",
                       None, f"cfc opens compiled code from it: run 'chmod go-w {root}', or "
                       "set CFC_CACHE_DIR to a folder only you can write")


def damage(path: Path) -> str | None:
    """Why the entry folder `path` cannot be used, or None when it is sound (or absent)."""
    if not os.path.lexists(path):
        return None
    if path.is_symlink() or not path.is_dir():
        return "it is a file, not a folder"
    # inside a private root only the owner matters, and that nobody at all may write (a
    # group bit is what a umask of 002 gives cfc's own files)
    foreign = writable_by_others(path, mask=0o002)
    if foreign is not None:
        return foreign
    try:
        meta = json.loads((path / "entry.json").read_text())
    except FileNotFoundError:
        return "it has no entry.json"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"its entry.json cannot be read ({exc})"
    if not isinstance(meta, dict):
        return f"its entry.json holds a {type(meta).__name__}, not an object"
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        return f"its entry.json has no {', '.join(repr(k) for k in missing)}"
    if meta["digest"] != path.name:
        return "its entry.json names another entry"
    for key in ("library", "cdef", "module"):
        if not _plain_name(meta[key]):
            return f"its entry.json has a bad {key!r}"
    for key in ("library", "cdef"):
        if not _plain_name(meta[key]):
            return f"its entry.json has a bad {key!r}"
        if not (path / str(meta[key])).is_file():
            return f"its {key} file {meta[key]} is missing"
    library = path / str(meta["library"])
    for name in ("entry.json", str(meta["library"]), str(meta["module"]) + ABI_SUFFIX):
        if os.path.lexists(path / name) and (why := writable_by_others(path / name, 0o002)):
            return f"its {name}: {why}"
    if file_sha256(library) != meta["library_sha256"]:
        return (f"its library {library.name} ({library.stat().st_size} bytes) does not match "
                "the sha256 recorded when it was built (truncated or changed)")
    abi = path / (str(meta["module"]) + ABI_SUFFIX)
    if meta.get("abi_sha256") is not None or os.path.lexists(abi):
        if not abi.is_file() or abi.is_symlink():
            return f"its ABI module {abi.name} is missing"
        if file_sha256(abi) != meta.get("abi_sha256"):
            return (f"its ABI module {abi.name} does not match the sha256 recorded when it "
                    "was built (changed)")
    return None


def note(text: str) -> None:
    print(f"cfc: note: {text}", file=sys.stderr)


def quarantine(path: Path, reason: str) -> Path:
    """Move the damaged entry `path` into the cache's quarantine folder; say so on stderr."""
    folder = path.parent / QUARANTINE
    dest = folder / f"{path.name}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    try:
        folder.mkdir(exist_ok=True)
        os.replace(path, dest)
    except OSError as exc:
        raise disk_error(path.parent, exc, f"moving the damaged entry {path.name} aside") \
            from None
    note(f"the cache entry {path} was damaged ({reason}); moved it to {dest} and building "
         "it again")
    kept = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in kept[KEEP_QUARANTINED:]:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    return dest


def staging_digest(name: str) -> str | None:
    """The digest (or, for older builds, its first 12 digits) a staging folder was for."""
    match = _STAGING.fullmatch(name)
    return match["digest"] if match else None


def sweep_staging(root: Path) -> list[Path]:
    """Remove staging folders whose build is gone; returns what went.

    A build holds `.<digest>.lock` for as long as its staging folder exists, so a staging
    folder whose lock can be taken now belongs to a killed build. One that names no lock
    (12-digit names from older versions) is stale once older than STALE_SECONDS."""
    from filelock import FileLock, Timeout  # the miss path only: filelock costs ~35 ms to import

    swept = []
    for path in sorted(root.iterdir()):
        digest = staging_digest(path.name)
        if digest is None or path.is_symlink() or not path.is_dir():
            continue
        if len(digest) == 64:
            lock = FileLock(str(root / f".{digest}.lock"), timeout=0)
            try:
                with lock:
                    shutil.rmtree(path, ignore_errors=True)
            except (Timeout, OSError):
                continue  # its build is still running (or the folder is not ours to lock)
        elif time.time() - path.stat().st_mtime > STALE_SECONDS:
            shutil.rmtree(path, ignore_errors=True)
        else:
            continue
        swept.append(path)
    return swept


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_space(path: Path) -> str:
    try:
        free = shutil.disk_usage(_existing(path)).free
    except OSError:
        return "free space unknown"
    return f"{free / 2**20:.1f} MiB free"


def is_disk_error(exc: OSError) -> bool:
    return exc.errno in DISK_ERRNOS


def disk_error(root: Path, exc: OSError, doing: str) -> CfcError:
    """The exit-3 error for a cache folder that is full, read-only or not writable."""
    space = free_space(root)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return CfcError(ErrorKind.ENVIRONMENT, f"the kernel cache at '{root}' is out of disk "
                        f"space ({space}) while {doing}", None,
                        "free some space on that disk, run 'cfc cache clear', or point "
                        "CFC_CACHE_DIR at a folder on another disk")
    why = "it is a file, not a folder" if root.exists() and not root.is_dir() else \
        "it is read-only" if exc.errno == errno.EROFS else exc.strerror or str(exc)
    return CfcError(ErrorKind.ENVIRONMENT, f"cannot write the kernel cache at '{root}': {why} "
                    f"({space}) while {doing}", None,
                    "point CFC_CACHE_DIR at a folder you can write, or run with "
                    "'--backend python' (no compiled kernels)")


__all__ = ["QUARANTINE", "REQUIRED_KEYS", "STALE_SECONDS", "damage", "disk_error",
           "file_sha256", "free_space", "is_disk_error", "note", "quarantine",
           "staging_digest", "sweep_staging"]
