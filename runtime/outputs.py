"""Output files the user names (--out, --trace, --certificate, graph -o, --out-dir).

`check_output` runs before any work, so a bad path fails in a second rather than after a
long relaxation, and it refuses to write over an input of the same command (the model, a
data or point file) or over any .cfc model. `write_output` writes through a temporary file
in the same folder and renames it into place: a failed write never leaves half a file, and
an existing file is replaced only by a complete one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from cfc_dsl.diagnostics import CfcError, ErrorKind

Inputs = Iterable[tuple[str, "str | Path | None"]]


def _error(message: str, hint: str) -> CfcError:
    return CfcError(ErrorKind.ARGUMENT, message, None, hint)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path: str | Path, flag: str, inputs: Inputs = (),
                 example: str = "result.json") -> Path:
    """The output path `path` (given as `flag`), or a CfcError saying why it cannot be written."""
    if not str(path):
        raise _error(f"{flag} needs a file name", f"write e.g. {flag} {example}")
    out = Path(path)
    if out.is_dir():
        raise _error(f"{flag} '{out}' is a directory", f"name a file in it, e.g. {flag} "
                     f"{out / example}")
    for what, given in inputs:
        if given is not None and str(given) and _same_file(out, Path(given)):
            raise _error(f"{flag} '{out}' is the {what} this command reads",
                         "choose another output name; cfc never writes over its inputs")
    if out.suffix.lower() == ".cfc" and out.exists():
        raise _error(f"{flag} '{out}' is a .cfc model; cfc does not write over models",
                     "choose another output name")
    _check_folder(out.parent, flag, out)
    return out


def check_output_dir(path: str | Path, flag: str) -> Path:
    """A folder to write into: it exists or can be created, and is not a file."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise _error(f"{flag} '{out}' is a file, not a folder",
                     f"name a folder (it is created if missing), e.g. {flag} build/")
    _check_folder(out, flag, out)
    return out


def _check_folder(folder: Path, flag: str, out: Path) -> None:
    """The nearest existing ancestor of `folder` must be a writable folder."""
    probe = folder if str(folder) else Path(".")
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise _error(f"cannot write {flag} '{out}': '{probe}' is a file, not a folder",
                     "choose a path whose folders are folders")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise _error(f"cannot write {flag} '{out}': the folder '{probe}' is not writable",
                     "choose a folder you can write to")


def write_output(path: Path, payload: str | bytes | Callable[[Path], None], flag: str) -> None:
    """Write `payload` (text, bytes, or a function that writes a given path) to `path`
    atomically; any OSError becomes a CfcError naming the flag and the path."""
    tmp: Path | None = None
    if path.is_symlink():  # write where the link points, and keep the link
        path = path.resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}",
                                    dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        if isinstance(payload, str):
            tmp.write_text(payload, encoding="utf-8")
        elif isinstance(payload, bytes):
            tmp.write_bytes(payload)
        else:
            payload(tmp)
        if path.exists():  # keep the permissions of the file being replaced
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise _error(f"cannot write {flag} '{path}': {exc.strerror or exc}",
                     "choose a path in a folder you can write to") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
