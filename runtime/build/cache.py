"""The kernel cache: content-hash keys, atomic publication under a file lock.

An entry is a folder named by the key's digest, holding the compiled module, its source
and `entry.json`. It is built in a temporary folder beside the cache and renamed into
place while holding a lock, so concurrent compiles of one model leave exactly one entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from cfc_dsl.diagnostics import CfcError, ErrorKind

# 2: the modules define cfc_hb_<energy>; entry.json has "lipschitz"
# 3: one pipeline for C and CUDA: the compiler runs directly, every entry has the same keys
CACHE_SCHEMA = 3


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class CacheEntry:
    path: Path
    digest: str
    meta: dict[str, object]

    @property
    def module_name(self) -> str:
        return str(self.meta["module"])


def cache_dir() -> Path:
    env = os.environ.get("CFC_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cfc"


def _read(path: Path) -> CacheEntry | None:
    meta_path = path / "entry.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return CacheEntry(path, path.name, meta)


def lookup(key: CacheKey) -> CacheEntry | None:
    return _read(cache_dir() / key.digest())


def _unusable(root: Path, exc: OSError) -> CfcError:
    why = "it is a file, not a folder" if root.exists() and not root.is_dir() else \
        exc.strerror or str(exc)
    return CfcError(ErrorKind.ENVIRONMENT, f"cannot write the kernel cache at '{root}': {why}",
                    None,
                    "point CFC_CACHE_DIR at a folder you can write, or run with "
                    "'--backend python' (no compiled kernels)")


def publish(key: CacheKey, build: Callable[[Path], dict[str, object]]) -> tuple[CacheEntry, bool]:
    """Return the entry for `key`, building it with `build(tmpdir) -> meta` if missing.

    The second value is True when this call built the entry (a miss).
    """
    root = cache_dir()
    digest = key.digest()
    final = root / digest
    lock = FileLock(str(root / f".{digest}.lock"))
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError as exc:
        raise _unusable(root, exc) from None
    try:
        existing = _read(final)
        if existing is not None:
            return existing, False
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".tmp-{digest[:12]}-", dir=root))
        except OSError as exc:
            raise _unusable(root, exc) from None
        try:
            meta = build(staging)
            meta["key"] = asdict(key)
            meta["digest"] = digest
            (staging / "entry.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
            if final.exists():  # a broken leftover without entry.json
                shutil.rmtree(final)
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    finally:
        lock.release()
    entry = _read(final)
    assert entry is not None
    return entry, True


def entries() -> list[CacheEntry]:
    root = cache_dir()
    if not root.is_dir():
        return []
    found = (_read(p) for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith("."))
    return [e for e in found if e is not None]


_DIGEST = re.compile(r"[0-9a-f]{64}")
_STAGING = re.compile(r"\.tmp-[0-9a-f]{12}-.+")
_LOCK = re.compile(r"\.[0-9a-f]{64}\.lock")


def is_entry_dir(path: Path) -> bool:
    """A folder this cache made: named by a digest (an entry) or a build's staging folder."""
    return path.is_dir() and not path.is_symlink() and bool(
        _DIGEST.fullmatch(path.name) or _STAGING.fullmatch(path.name))


def clear() -> int:
    """Remove every entry (and stale temporaries); returns how many entries went.

    Only what the cache itself made goes: if CFC_CACHE_DIR points at a folder holding
    anything else, that stays."""
    root = cache_dir()
    count = 0
    if not root.is_dir():
        return 0
    for path in sorted(root.iterdir()):
        if is_entry_dir(path):
            count += 0 if path.name.startswith(".") else 1
            shutil.rmtree(path, ignore_errors=True)
        elif _LOCK.fullmatch(path.name) and path.is_file():
            path.unlink(missing_ok=True)
    return count


def evict(entry: CacheEntry) -> None:
    """Remove one broken entry (its module no longer loads) so that it is built again."""
    if is_entry_dir(entry.path):
        shutil.rmtree(entry.path, ignore_errors=True)


def size_bytes(entry: CacheEntry) -> int:
    return sum(p.stat().st_size for p in entry.path.rglob("*") if p.is_file())
