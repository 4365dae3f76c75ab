"""Output files the user names (--out, --trace, --certificate, graph -o, --out-dir).

`check_output` runs before any work, so a bad path fails in a second rather than after a
long relaxation, and it refuses to write over an input of the same command (the model, a
data or point file) or over any .cfc model; a symlink is judged by the file it points to.
`write_output` writes a regular file through a temporary file in the same folder and
renames it into place: a failed write never leaves half a file. A device or FIFO is never
replaced: the output is written into it, or refused when no one reads the FIFO.
"""

from __future__ import annotations

import errno
import os
import stat
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
    target = _target(out)
    shown = f"'{out}'" if target == out else f"'{out}' (a link to '{target}')"
    if target.is_dir():
        raise _error(f"{flag} {shown} is a directory", f"name a file in it, e.g. {flag} "
                     f"{out / example}")
    for what, given in inputs:
        if given is not None and str(given) and _same_file(target, Path(given)):
            raise _error(f"{flag} {shown} is the {what} this command reads",
                         "choose another output name; cfc never writes over its inputs")
    _refuse_model(target, flag, shown)
    if not _is_special(target):  # a device or FIFO is written in place; no folder needed
        _check_folder(target.parent, flag, out)
    return out


def _target(path: Path) -> Path:
    """What writing to `path` writes: the end of its chain of symlinks (which may not exist)."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _is_special(path: Path) -> bool:
    """An existing file that is neither regular nor a folder: a device, FIFO or socket."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _refuse_model(target: Path, flag: str, shown: str) -> None:
    if target.suffix.lower() == ".cfc" and target.exists():
        raise _error(f"{flag} {shown} is a .cfc model; cfc does not write over models",
                     "choose another output name")


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
    """Write `payload` (text, bytes, or a function that writes a given path) to `path`:
    a regular file atomically, a device or FIFO in place; any OSError becomes a CfcError
    naming the flag and the path."""
    target = _target(path)  # write where the link points, and keep the link
    _refuse_model(target, flag, f"'{path}'")
    # a writer function picks its format from the suffix of the name the user gave
    try:
        if _is_special(target):
            _write_in_place(target, payload, flag, path.suffix)
        else:
            _replace(target, payload, path.suffix)
    except OSError as exc:
        raise _error(f"cannot write {flag} '{target}': {exc.strerror or exc}",
                     "choose a path in a folder you can write to") from None


def _replace(path: Path, payload: str | bytes | Callable[[Path], None], suffix: str) -> None:
    import tempfile  # here: a run that writes no file (the usual `cfc run`) never needs it

    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}",
                                    dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        _fill(tmp, payload)
        if path.exists():  # keep the permissions of the file being replaced
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        if _is_special(path):  # became a device or FIFO since we looked: never replace it
            raise OSError(errno.EEXIST, "it is no longer a regular file")
        os.replace(tmp, path)
        tmp = None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _write_in_place(target: Path, payload: str | bytes | Callable[[Path], None],
                    flag: str, suffix: str) -> None:
    """Into a device or FIFO: opened without O_CREAT or O_TRUNC, so it stays what it is, and
    without blocking, so a FIFO no one reads is refused instead of waited on."""
    try:
        fd = os.open(target, os.O_WRONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO and stat.S_ISFIFO(target.stat().st_mode):
            raise _error(f"cannot write {flag} '{target}': it is a FIFO that no process is "
                         "reading", "start the reader first, or write to a regular file"
                         ) from None
        raise
    with os.fdopen(fd, "wb") as sink:
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        if isinstance(payload, (str, bytes)):
            sink.write(payload.encode() if isinstance(payload, str) else payload)
            return
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory(prefix="cfc-out-") as folder:
            # a writer function wants a path; it gets a private file that is then copied
            staged = Path(folder) / f"out{suffix}"
            payload(staged)
            with open(staged, "rb") as source:
                shutil.copyfileobj(source, sink)


def _fill(path: Path, payload: str | bytes | Callable[[Path], None]) -> None:
    if isinstance(payload, str):
        path.write_text(payload, encoding="utf-8")
    elif isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        payload(path)
