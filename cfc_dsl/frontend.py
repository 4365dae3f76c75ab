"""Load stage glue: a .cfc file or text -> checked `Model` (parse, then check)."""

from __future__ import annotations

from pathlib import Path

from cfc_dsl.checker import check
from cfc_dsl.diagnostics import CfcError, ErrorKind
from cfc_dsl.model import Model
from cfc_dsl.parser import parse


def load_source(text: str, name: str) -> Model:
    return check(parse(text, name))


def load_file(path: str | Path) -> Model:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CfcError(ErrorKind.ARGUMENT, f"model file '{path}' does not exist", None,
                       "check the path; model files end in .cfc") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CfcError(ErrorKind.ARGUMENT, f"cannot read model file '{path}': {exc}", None,
                       "model files are UTF-8 text") from None
    return load_source(text, str(path))
