"""The checked-model cache: a model file that parsed and checked before is read back from
JSON instead of being parsed and checked again (issue 12: a cache-hit `cfc run` then loads
no Lark, parser or checker; parsing the stdlib and the model was a fifth of its start-up).

Safe by construction, never pickle: the file is plain JSON, and decoding builds only the
frozen dataclasses and enums of `syntax`, `model` and `diagnostics`, by name, through their
constructors. The key is the SHA-256 of the source text, its name (spans carry it) and
every source file of the language package (the grammar, the stdlib and the checker
included), so any edit there misses. Entries live in `models/` of the user's cfc cache, a
folder no other user may write (checked as for the parser tables), written atomically.
Only models that checked cleanly are stored; a missing, foreign or unreadable entry is a
miss, never an error. Object sharing is kept (each object is stored once, children first).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from cfc_dsl import diagnostics, model, syntax
from cfc_dsl.cachedir import cache_root, private

FORMAT = 1  # bump when the encoding below changes
MAX_ENTRIES = 256  # checked models kept; the least recently used beyond go on a store
_MODULES = (syntax, model, diagnostics)


def _classes() -> dict[str, type]:
    """The decodable types: dataclasses and enums defined in `_MODULES`, by qualified name."""
    out: dict[str, type] = {}
    for module in _MODULES:
        for value in vars(module).values():
            if (isinstance(value, type) and value.__module__ == module.__name__
                    and (dataclasses.is_dataclass(value) or issubclass(value, enum.Enum))):
                out[f"{module.__name__}.{value.__qualname__}"] = value
    return out


_CLASSES = _classes()


# ---------------------------------------------------------------- encode
class _Encoder:
    """The object graph as a list of nodes, children before parents; refs are indices."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.seen: dict[int, int] = {}
        self.keep: list[Any] = []  # holds encoded objects alive, so ids stay unique

    def value(self, obj: Any) -> Any:
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if type(obj) in (int, float):  # not numpy scalars, not int/float subclasses
            return obj
        if isinstance(obj, tuple):
            return {"t": [self.value(v) for v in obj]}
        return {"r": self.ref(obj)}

    def ref(self, obj: Any) -> int:
        if id(obj) in self.seen:
            return self.seen[id(obj)]
        cls = type(obj)
        name = f"{cls.__module__}.{cls.__qualname__}"
        if _CLASSES.get(name) is not cls:
            raise TypeError(f"cannot store a {name}")
        if isinstance(obj, enum.Enum):
            node: Any = [name, obj.name]
        else:
            node = [name, {f.name: self.value(getattr(obj, f.name))
                           for f in dataclasses.fields(obj) if f.init}]
        self.seen[id(obj)] = len(self.nodes)
        self.keep.append(obj)
        self.nodes.append(node)
        return self.seen[id(obj)]


def encode(checked: model.Model) -> str:
    enc = _Encoder()
    root = enc.ref(checked)
    return json.dumps({"format": FORMAT, "nodes": enc.nodes, "root": root},
                      separators=(",", ":"), allow_nan=True)


# ---------------------------------------------------------------- decode
def decode(text: str) -> model.Model:
    """The model stored by `encode`; ValueError/TypeError/KeyError for anything else."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError("not a cfc model cache entry of this format")
    built: list[Any] = []

    def value(v: Any) -> Any:
        if isinstance(v, dict):
            if "t" in v:
                return tuple(value(x) for x in v["t"])
            index = v["r"]
            if not isinstance(index, int) or not 0 <= index < len(built):
                raise ValueError("a reference to an object not built yet")
            return built[index]
        if v is None or isinstance(v, (bool, str, int, float)):
            return v
        raise TypeError(f"unexpected {type(v).__name__} in a model cache entry")

    for name, body in data["nodes"]:
        cls = _CLASSES[name]
        if issubclass(cls, enum.Enum):
            built.append(cls[body])
        else:
            built.append(cls(**{k: value(v) for k, v in body.items()}))
    out = built[data["root"]]
    if not isinstance(out, model.Model):
        raise TypeError("the entry's root is not a Model")
    return out


# ---------------------------------------------------------------- the files
def folder_digest(root: Any) -> str:
    """SHA-256 of the .py, .lark and .cfc files directly in `root` (names and bytes)."""
    digest = hashlib.sha256(f"{FORMAT} py{sys.version_info[0]}.{sys.version_info[1]}".encode())
    for path in sorted(root.iterdir(), key=lambda p: p.name):
        if path.is_file() and path.name.endswith((".py", ".lark", ".cfc")):
            digest.update(f"\n{path.name}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def language_digest() -> str:
    """The language package's digest: the parser, grammar, stdlib, checker and model. Read
    from the package's folder itself (cfc is always installed unzipped): importlib.resources
    would add ~10 ms of imports and traversal to every run."""
    return folder_digest(Path(__file__).resolve().parent) + "-" + _lark_stamp()


def _lark_stamp() -> str:
    """Which Lark parsed: its version file's size and mtime, found without importing Lark
    (a hit must not pay for it), so an upgrade of Lark misses like an edit of the grammar."""
    import importlib.util

    spec = importlib.util.find_spec("lark")
    if spec is None or spec.origin is None:
        return "no-lark"
    info = os.stat(spec.origin)
    return f"{info.st_size}-{info.st_mtime_ns}"


def entry_path(text: str, name: str) -> Path | None:
    """Where the checked model of (`text`, `name`) is kept, or None where no private
    folder can be had (then nothing is cached)."""
    if not hasattr(os, "getuid"):
        return None
    key = hashlib.sha256(json.dumps([language_digest(), name, text]).encode()).hexdigest()
    folder = cache_root() / "models"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not private(folder, is_dir=True):
            return None
    except OSError:
        return None
    return folder / f"{key}.json"


def load(path: Path) -> model.Model | None:
    """The stored model, or None (a miss) for a missing, foreign or damaged entry."""
    try:
        if not private(path, is_dir=False):
            return None
        checked = decode(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, RecursionError):  # any damage is a miss: check again
        return None
    try:
        os.utime(path)  # used now: the pruning in `store` drops the least recently used
    except OSError:
        pass
    return checked


def store(path: Path, checked: model.Model) -> None:
    """Write the entry atomically; a model that cannot be stored, or a full or read-only
    disk, leaves no entry and no error (the next run checks again)."""
    try:
        text = encode(checked)
    except (TypeError, RecursionError):
        return
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return
    prune(path.parent)


def _ours(path: Path) -> bool:
    """A file this cache names: a digest or a temporary, .json, not a link."""
    name = path.name
    return (name.endswith(".json") and (len(name) == 69 or name.startswith(".tmp-"))
            and path.is_file() and not path.is_symlink())


def prune(folder: Path, keep: int | None = None) -> int:
    """Remove all but the `keep` (default MAX_ENTRIES) most recently used entries (each
    edit of a model adds one, ~40 kB); returns how many went. Best effort: what cannot go
    stays."""
    keep = MAX_ENTRIES if keep is None else keep
    try:
        entries = [(p.stat().st_mtime_ns, p.name, p) for p in folder.iterdir()
                   if _ours(p) and not p.name.startswith(".tmp-")]
    except OSError:
        return 0
    removed = 0
    for _, _, path in sorted(entries, reverse=True)[keep:]:
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
    return removed


def clear() -> int:
    """Remove the stored models (`cfc cache clear`); returns how many went."""
    return clear_folder(cache_root() / "models")


def clear_folder(folder: Path) -> int:
    """Remove the entries of a JSON store laid out like this one (this cache, the prepared
    energies of codegen/prepared_store.py); returns how many went. Only files such a store
    names (a digest or a temporary, .json) are touched; what cannot go stays, as an entry is
    only ever a shortcut to what a check or a derivation would give again."""
    if not folder.is_dir() or folder.is_symlink():
        return 0
    count = 0
    for path in folder.iterdir():
        if _ours(path):
            try:
                path.unlink()
                count += not path.name.startswith(".tmp-")
            except OSError:
                pass
    return count
