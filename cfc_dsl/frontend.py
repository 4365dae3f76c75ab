"""Load stage glue: a .cfc file or text -> checked `Model` (parse, then check).

`read_input` is the one way cfc reads a file the user names (a model, data, point file or
certificate): regular files only, opened without blocking so a FIFO is refused rather than
waited on, and never more bytes than the caller's limit.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from cfc_dsl.diagnostics import CfcError, ErrorKind, Source, Span
from cfc_dsl.model import Model


def load_source(text: str, name: str) -> Model:
    from cfc_dsl.checker import check  # imported here: a model-cache hit needs neither
    from cfc_dsl.parser import parse

    return check(parse(text, name))


def load_cached(text: str, name: str) -> Model:
    """`load_source` through the checked-model cache (`modelcache.py`): what the command
    line uses, so a repeated `cfc run` skips parsing and checking."""
    from cfc_dsl import modelcache

    path = modelcache.entry_path(text, name)
    if path is not None:
        hit = modelcache.load(path)
        if hit is not None:
            return hit
    checked = load_source(text, name)
    if path is not None:
        modelcache.store(path, checked)
    return checked


MAX_MODEL_BYTES = 16 * 2 ** 20  # a model is text someone wrote; 16 MiB is far past any


def load_file(path: str | Path, cached: bool = False) -> Model:
    """The checked model in the file at `path`; `cached`: through the checked-model cache."""
    if not str(path):
        raise CfcError(ErrorKind.ARGUMENT, "the model file name is empty", None,
                       "pass the path of a .cfc file")
    path = Path(path)
    data = read_input(path, "model file", limit=MAX_MODEL_BYTES,
                      hint="check the path; model files end in .cfc")
    try:
        text = data.decode("utf-8-sig")  # -sig: a byte-order mark (Windows editors) is not text
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, data, exc) from None
    # as Path.read_text does: \r\n and \r end lines too
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return (load_cached if cached else load_source)(text, str(path))


_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


@contextmanager
def open_input(path: Path, what: str, *, limit: int | None, hint: str,
               span: Span | None = None, kind: ErrorKind = ErrorKind.ARGUMENT
               ) -> Iterator[tuple[BinaryIO, int]]:
    """The open regular file `path` and its size; `what` names it in messages ("model
    file"), and every refusal is a CfcError of `kind` at `span` with `hint`."""
    def refuse(message: str, fix: str = hint) -> CfcError:
        return CfcError(kind, message, span, fix)

    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)  # O_NONBLOCK: opening a FIFO must not wait for a writer
    except FileNotFoundError:
        raise refuse(f"{what} '{path}' does not exist") from None
    except IsADirectoryError:
        raise refuse(f"{what} '{path}' is a directory", "pass a file, not a folder") from None
    except OSError as exc:
        raise refuse(f"cannot read {what} '{path}': {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise refuse(f"{what} '{path}' is a directory", "pass a file, not a folder")
        if not stat.S_ISREG(info.st_mode):
            described = next((name for test, name in _KINDS if test(info.st_mode)),
                             "not a regular file")
            raise refuse(f"{what} '{path}' is {described}, not a regular file",
                         "cfc reads its inputs from regular files only; save the stream to a "
                         "file first")
        if limit is not None and info.st_size > limit:
            raise refuse(f"{what} '{path}' is {info.st_size:,} bytes, more than the "
                         f"{limit:,} cfc reads for one", hint)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        file = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with file:
        yield file, info.st_size  # type: ignore[misc]


def read_input(path: Path, what: str, *, limit: int, hint: str, span: Span | None = None,
               kind: ErrorKind = ErrorKind.ARGUMENT) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them (see `open_input`)."""
    with open_input(path, what, limit=limit, hint=hint, span=span, kind=kind) as (file, _):
        try:
            data = file.read(limit + 1)  # a file that grew past its size: still bounded
        except OSError as exc:
            raise CfcError(kind, f"cannot read {what} '{path}': {exc.strerror or exc}", span,
                           hint) from None
    if len(data) > limit:
        raise CfcError(kind, f"{what} '{path}' is more than the {limit:,} bytes cfc reads for "
                       "one", span, hint)
    return data


def _not_utf8(path: Path, data: bytes, exc: UnicodeDecodeError) -> CfcError:
    """Point at the first byte that is not UTF-8, on its line."""
    before = data[:exc.start]
    line = before.count(b"\n") + 1
    start = before.rfind(b"\n") + 1
    column = len(data[start:exc.start].decode("utf-8", errors="replace")) + 1
    end = data.find(b"\n", exc.start)
    shown = data[start:end if end >= 0 else len(data)].decode("utf-8", errors="replace")
    shown = "".join(c if c.isprintable() or c == "\t" else "\ufffd" for c in shown)
    span = Span(Source(str(path), "\n" * (line - 1) + shown), line, column, line, column + 1)
    return CfcError(ErrorKind.ARGUMENT, f"byte {data[exc.start]:#04x} is not UTF-8 text", span,
                    "model files are UTF-8 text; is this a binary file, or saved in another "
                    "encoding?")
