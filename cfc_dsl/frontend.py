"""Load stage glue: a .cfc file or text -> checked `Model` (parse, then check)."""

from __future__ import annotations

from pathlib import Path

from cfc_dsl.checker import check
from cfc_dsl.diagnostics import CfcError, ErrorKind, Source, Span
from cfc_dsl.model import Model
from cfc_dsl.parser import parse


def load_source(text: str, name: str) -> Model:
    return check(parse(text, name))


def load_file(path: str | Path) -> Model:
    if not str(path):
        raise CfcError(ErrorKind.ARGUMENT, "the model file name is empty", None,
                       "pass the path of a .cfc file")
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CfcError(ErrorKind.ARGUMENT, f"model file '{path}' does not exist", None,
                       "check the path; model files end in .cfc") from None
    except IsADirectoryError:
        raise CfcError(ErrorKind.ARGUMENT, f"model file '{path}' is a directory", None,
                       "pass the path of a .cfc file inside it") from None
    except OSError as exc:
        raise CfcError(ErrorKind.ARGUMENT, f"cannot read model file '{path}': "
                       f"{exc.strerror or exc}", None, "check the path and its permissions"
                       ) from None
    try:
        text = data.decode("utf-8-sig")  # -sig: a byte-order mark (Windows editors) is not text
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, data, exc) from None
    # as Path.read_text does: \r\n and \r end lines too
    return load_source(text.replace("\r\n", "\n").replace("\r", "\n"), str(path))


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
