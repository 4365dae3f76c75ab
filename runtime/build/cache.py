"""The kernel cache: content-hash keys, atomic publication under a file lock.

An entry is a folder named by the key's digest, holding the compiled module, its source
and `entry.json`. It is built in a temporary folder beside the cache and renamed into
place while holding a lock, so concurrent compiles of one model leave exactly one entry.
Entries are verified before use and healed when damaged (`heal.py`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from cfc_dsl.cachedir import cache_root
from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.frozen import frozen
from cfc_dsl.runtime.build import heal

# 2: the modules define cfc_hb_<energy>; entry.json has "lipschitz"
# 3: one pipeline for C and CUDA: the compiler runs directly, every entry has the same keys
# 4: entry.json records "library_sha256", checked before the library is opened
# 5: a C entry holds a plain library and cffi's out-of-line ABI module, not an extension
# 6: entry.json records "abi_sha256" of that module, checked before it is read
CACHE_SCHEMA = 6


@frozen
class CacheKey:
    """Every input that changes the compiled module. The digest names the cache entry."""

    source_digest: str  # sha256 of the model's kernel spec (energies used, model name)
    generator: str  # sha256 of the code generator itself: templates, printer, derivation
    target: str
    compiler: str
    compiler_version: str
    flags: tuple[str, ...]
    cfc_version: str
    schema: int
    cffi_version: str
    python_abi: str

    def digest(self) -> str:
        payload = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()


@frozen
class CacheEntry:
    path: Path
    digest: str
    meta: dict[str, object]

    @property
    def module_name(self) -> str:
        return str(self.meta["module"])


def cache_dir() -> Path:
    """The kernel cache: cfc's cache folder (`cfc_dsl.cachedir`, shared by every cache)."""
    return cache_root()


def _read(path: Path) -> CacheEntry | None:
    """The entry at `path` as it is, unverified (for listing); None unless it is an object."""
    try:
        meta = json.loads((path / "entry.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return CacheEntry(path, path.name, meta) if isinstance(meta, dict) else None


def lookup(key: CacheKey) -> CacheEntry | None:
    """The sound entry for `key`, or None. A damaged one is left for `publish` to heal."""
    root = cache_dir()
    heal.check_root(root, default=not os.environ.get("CFC_CACHE_DIR"))
    path = root / key.digest()
    return None if heal.damage(path) is not None or not path.is_dir() else _read(path)


def publish(key: CacheKey, build: Callable[[Path], dict[str, object]],
            damaged: str | None = None) -> tuple[CacheEntry, bool]:
    """Return the entry for `key`, building it with `build(tmpdir) -> meta` if missing.

    The second value is True when this call built the entry (a miss). A damaged entry (or
    one the caller could not load: `damaged` says why) is quarantined and built again.
    """
    from filelock import FileLock  # a cache hit takes no lock; filelock costs ~35 ms of start-up

    root = cache_dir()
    digest = key.digest()
    final = root / digest
    lock = FileLock(str(root / f".{digest}.lock"))
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise heal.disk_error(root, exc, "creating the cache folder") from None
    heal.check_root(root, default=not os.environ.get("CFC_CACHE_DIR"))  # before the lock
    try:
        lock.acquire()
    except OSError as exc:
        raise heal.disk_error(root, exc, "taking the build lock") from None
    try:
        reason = heal.damage(final)
        if reason is None and damaged is not None and final.exists():
            reason = damaged
        if reason is not None:
            heal.quarantine(final, reason)
        existing = _read(final) if final.is_dir() else None
        if existing is not None:
            return existing, False
        heal.sweep_staging(root)
        _build_into(root, final, key, build)
    finally:
        lock.release()
    entry = _read(final)
    assert entry is not None
    return entry, True


def _build_into(root: Path, final: Path, key: CacheKey,
                build: Callable[[Path], dict[str, object]]) -> None:
    digest = final.name
    try:
        import tempfile  # the miss path: a hit creates nothing

        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{digest}-", dir=root))
    except OSError as exc:
        raise heal.disk_error(root, exc, "creating a build folder") from None
    try:
        meta = build(staging)
        meta["key"] = asdict(key)
        meta["digest"] = digest
        meta["library_sha256"] = heal.file_sha256(staging / str(meta["library"]))
        abi = staging / (str(meta["module"]) + heal.ABI_SUFFIX)
        # the C target's out-of-line ABI module, checked like the library (None for CUDA,
        # whose cdef is parsed in-process: every target's entry.json has the same keys)
        meta["abi_sha256"] = heal.file_sha256(abi) if abi.is_file() else None
        (staging / "entry.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        os.replace(staging, final)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if heal.is_disk_error(exc):
            raise heal.disk_error(root, exc, f"writing the entry {digest[:16]}") from None
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def entries() -> list[CacheEntry]:
    root = cache_dir()
    if not root.is_dir():
        return []
    found = (_read(p) for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith("."))
    return [e for e in found if e is not None]


_DIGEST = re.compile(r"[0-9a-f]{64}")
_LOCK = re.compile(r"\.[0-9a-f]{64}\.lock")


def is_entry_dir(path: Path) -> bool:
    """A folder this cache made: an entry (named by a digest), a build's staging folder, or
    the quarantine of damaged entries."""
    return path.is_dir() and not path.is_symlink() and bool(
        _DIGEST.fullmatch(path.name) or heal.staging_digest(path.name)
        or path.name == heal.QUARANTINE)


def clear() -> int:
    """Remove every entry (and temporaries, quarantine); returns how many entries went.

    Only what the cache itself made goes: if CFC_CACHE_DIR points at a folder holding
    anything else, that stays. What cannot be removed (a read-only cache) is an exit-3
    error that says how many entries did go."""
    root = cache_dir()
    count, failed = 0, []
    if not root.is_dir():
        return 0
    for path in sorted(root.iterdir()):
        name, plain = path.name, path.is_file() and not path.is_symlink()
        if is_entry_dir(path):
            remove, counts = shutil.rmtree, not name.startswith(".")
        elif plain and (_DIGEST.fullmatch(name) or _LOCK.fullmatch(name)):
            remove, counts = Path.unlink, not name.startswith(".")  # a damaged entry, a lock
        else:
            continue
        try:
            remove(path)
        except OSError as exc:
            if counts:
                failed.append((path, exc))
            continue
        count += counts
    if failed:
        path, exc = failed[0]
        raise CfcError(ErrorKind.ENVIRONMENT, f"removed {count} of {count + len(failed)} cache "
                       f"entries from {root}: cannot remove {path.name}: "
                       f"{exc.strerror or exc} ({heal.free_space(root)})", None,
                       "make the cache folder writable and run 'cfc cache clear' again, or "
                       "point CFC_CACHE_DIR at another folder")
    return count


def evict(entry: CacheEntry, reason: str = "its module does not load") -> None:
    """Quarantine one broken entry so that it is built again."""
    if is_entry_dir(entry.path):
        heal.quarantine(entry.path, reason)


def size_bytes(entry: CacheEntry) -> int:
    return sum(p.stat().st_size for p in entry.path.rglob("*") if p.is_file())
