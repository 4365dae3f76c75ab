"""The prepared-energy store: an energy prepared once is read back, not derived again.

Preparing an energy (codegen/prepare.py: derive, CSE, the curvature bound, the printed C)
is a function of its job alone, the energy and the specs it calls, and of the generator's
sources. So its `Prepared` is kept under a key over exactly those (issue 12: SymPy's import
alone was 0.6 s of a 2.2 s cold compile, and a model of standard-library energies needs
nothing else from it):

- the key is SHA-256 over the job's canonical text (`job_text`: every field an `EnergySpec`
  compares, recursively, spans excluded, so equal keys are equal jobs) and `digest()`, the
  language and codegen packages' source files, SymPy's version and this module's FORMAT;
- a value is JSON (never pickle), decoded by codegen/prepared_codec.py, which builds only
  the view classes of codegen/viewtypes.py; anything malformed is a miss;
- the entries live (a) in `prepared/` of the user's private cfc cache, written after each
  prepare and bounded like the checked models (least recently used beyond MAX_ENTRIES go),
  and (b) for every stdlib energy, in the package's stdlib_prepared.json, used only while
  its recorded digest is the current one (a stale file costs time, never wrong code).
  Regenerate it with `python -m cfc_dsl.codegen.stdlib_prepared`.

Nothing here imports SymPy: a compile whose energies are all found never does.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import sys
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from cfc_dsl import cachedir
from cfc_dsl.cachedir import cache_root, private
from cfc_dsl.codegen import prepared_codec
from cfc_dsl.codegen.viewtypes import Prepared
from cfc_dsl.jobs import EnergyJob

FORMAT = 1  # bump when the key's text or the encoding changes
MAX_ENTRIES = 4096  # prepared energies kept (a few kB each)
SHIPPED = Path(__file__).resolve().parent / "stdlib_prepared.json"
REGENERATE = "python -m cfc_dsl.codegen.stdlib_prepared"
_SUFFIXES = (".py", ".lark", ".cfc")


# ---------------------------------------------------------------- keys
def _canon(obj: Any, out: list[str]) -> None:
    """A text that determines `obj` as its == does: a dataclass by its class and every
    field that takes part in comparison (spans do not), floats by repr (exact)."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        out.append(f"{type(obj).__name__}:{obj!r}")
    elif isinstance(obj, tuple):
        out.append(f"({len(obj)}")
        for item in obj:
            _canon(item, out)
        out.append(")")
    elif isinstance(obj, enum.Enum):
        out.append(f"{type(obj).__qualname__}.{obj.name}")
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out.append(f"{type(obj).__module__}.{type(obj).__qualname__}{{")
        for f in dataclasses.fields(obj):
            if f.compare:
                out.append(f.name)
                _canon(getattr(obj, f.name), out)
        out.append("}")
    else:
        raise TypeError(f"no canonical text for a {type(obj).__name__}")


def job_text(job: EnergyJob) -> str:
    out: list[str] = []
    _canon(job, out)
    return "\n".join(out)


def job_key(job: EnergyJob) -> str | None:
    """The job's key within one generator digest, or None (not storable: too deep)."""
    try:
        return hashlib.sha256(job_text(job).encode()).hexdigest()
    except (RecursionError, TypeError):
        return None


def _sympy_stamp() -> str:
    """SymPy's version file, found without importing SymPy."""
    import importlib.util

    spec = importlib.util.find_spec("sympy")
    if spec is None or spec.origin is None:
        return "no-sympy"
    release = Path(spec.origin).parent / "release.py"
    return release.read_text(encoding="utf-8") if release.is_file() else str(os.stat(spec.origin))


@lru_cache(maxsize=1)
def digest() -> str:
    """SHA-256 over the language and codegen packages' sources (name and bytes, by name, as
    runtime/build/pipeline.generator_digest reads them), SymPy's version and FORMAT: any
    edit there makes every stored entry a miss."""
    h = hashlib.sha256(f"{FORMAT} {sys.version_info[:2]} {_sympy_stamp()}".encode())
    for package, root in (("cfc_dsl", Path(cachedir.__file__).parent),
                          ("cfc_dsl.codegen", Path(__file__).parent)):
        for path in sorted(root.iterdir(), key=lambda p: p.name):
            if path.is_file() and path.name.endswith(_SUFFIXES):
                h.update(f"{package}/{path.name}\n".encode())
                h.update(path.read_bytes())
    return h.hexdigest()


# ---------------------------------------------------------------- the shipped file
@lru_cache(maxsize=1)
def _shipped() -> dict[str, Any]:
    """The package's stdlib entries (job key -> encoded), or {} when stale or unreadable."""
    try:
        data = json.loads(SHIPPED.read_text(encoding="utf-8"))
        if data.get("format") == FORMAT and data.get("digest") == digest():
            entries = data["entries"]
            return entries if isinstance(entries, dict) else {}
    except (OSError, UnicodeDecodeError, ValueError, AttributeError, KeyError, TypeError):
        pass
    return {}


def shipped_entries() -> dict[str, Any]:
    """The shipped file's entries while it is current (else {})."""
    return _shipped()


def shipped_text(prepared: dict[str, Prepared]) -> str:
    entries = {key: prepared_codec.encode(p) for key, p in sorted(prepared.items())}
    return json.dumps({"format": FORMAT, "digest": digest(), "regenerate": REGENERATE,
                       "entries": entries}, indent=0, sort_keys=True) + "\n"


# ---------------------------------------------------------------- the cache folder
def _folder() -> Path | None:
    if not hasattr(os, "getuid"):
        return None
    folder = cache_root() / "prepared"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return folder if private(folder, is_dir=True) else None
    except OSError:
        return None


def _entry_name(key: str) -> str:
    return hashlib.sha256(f"{digest()} {key}".encode()).hexdigest() + ".json"


def _read(path: Path) -> Prepared | None:
    try:
        if not private(path, is_dir=False):
            return None
        found = prepared_codec.decode(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, RecursionError):  # any damage is a miss: prepare it again
        return None
    try:
        os.utime(path)  # used now: pruning drops the least recently used
    except OSError:
        pass
    return found


def lookup(jobs: Iterable[EnergyJob]) -> dict[EnergyJob, Prepared]:
    """The jobs found stored (the package's file first, then the user's cache)."""
    out: dict[EnergyJob, Prepared] = {}
    folder: Path | None = None
    for job in jobs:
        key = job_key(job)
        if key is None:
            continue
        encoded = _shipped().get(key)
        if encoded is not None:
            try:
                out[job] = prepared_codec.decode(encoded)
                continue
            except (ValueError, TypeError, KeyError, IndexError, AttributeError):
                pass
        folder = folder or _folder()
        if folder is not None and (found := _read(folder / _entry_name(key))) is not None:
            out[job] = found
    return out


def clear() -> int:
    """Remove the stored energies of the user's cache (`cfc cache clear`); returns how many."""
    from cfc_dsl.modelcache import clear_folder

    return clear_folder(cache_root() / "prepared")


def keep(prepared: dict[EnergyJob, Prepared]) -> None:
    """Store newly prepared energies; a full or read-only disk stores nothing, silently."""
    if not prepared or (folder := _folder()) is None:
        return
    import tempfile

    from cfc_dsl.modelcache import prune

    for job, value in prepared.items():
        key = job_key(job)
        if key is None:
            continue
        try:
            text = json.dumps(prepared_codec.encode(value), separators=(",", ":"))
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=folder)
        except (OSError, TypeError, ValueError):
            continue
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
            os.replace(tmp, folder / _entry_name(key))
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    prune(folder, MAX_ENTRIES)


__all__ = ["FORMAT", "MAX_ENTRIES", "REGENERATE", "SHIPPED", "clear", "digest", "job_key", "job_text",
           "keep", "lookup", "shipped_entries", "shipped_text"]
