"""The Jinja environment of the renderers, with its templates shipped compiled.

Jinja turns each template into Python source (lexer, parser, code generator) before it
renders it: ~0.1 s of CPU for the kernel templates, more than rendering them, in every
process that renders (a cold `cfc compile`). So the package ships that Python source in
`compiled_templates.json`, written by

    python -m cfc_dsl.codegen.jinja_env     # after a template or Jinja changes

and a bytecode cache (`Shipped`) hands it to Jinja in place of compiling. Jinja itself
checks each template against it: a bucket carries the SHA-1 of the template's current
source, and only an entry with the same checksum, written by the same Jinja version with
the same environment options, is used; any other template is compiled as before. The
file is JSON read with `json.loads`, its code is our own generated code compiled with
`compile()` (as Jinja would), nothing is unpickled. tests/test_jinja_env.py checks that
the file is current and that rendering through it gives the same bytes.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from jinja2.bccache import Bucket, BytecodeCache

SHIPPED = "compiled_templates.json"
# options that change the generated code; the runtime ones (undefined) do not
OPTIONS: dict[str, Any] = {"trim_blocks": True, "lstrip_blocks": True,
                           "keep_trailing_newline": True, "autoescape": False}


def _template_folder() -> Any:
    return resources.files("cfc_dsl.templates")


def _read(name: str) -> str:
    return _template_folder().joinpath(name).read_text("utf-8")


def template_names() -> list[str]:
    """The renderer's templates (figure.tex.j2 belongs to runtime/figures)."""
    return sorted(p.name for p in _template_folder().iterdir()
                  if p.name.endswith(".j2") and p.name != "figure.tex.j2")


class Shipped(BytecodeCache):
    """Jinja's bytecode-cache hook, serving the shipped compiled templates (read-only)."""

    def __init__(self, entries: dict[str, dict[str, str]]):
        self.entries = entries

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        return name

    def load_bytecode(self, bucket: Bucket) -> None:
        entry = self.entries.get(bucket.key)
        if entry is not None and entry.get("sha1") == bucket.checksum:
            bucket.code = compile(entry["python"], "<template>", "exec")  # Jinja's name too

    def dump_bytecode(self, bucket: Bucket) -> None:
        """A template compiled here (not shipped, or changed) is not written anywhere."""


def _shipped_entries() -> dict[str, dict[str, str]]:
    """The shipped templates, or none when the file is missing, damaged, or written by
    another Jinja or with other options."""
    try:
        data = json.loads(resources.files("cfc_dsl.codegen").joinpath(SHIPPED).read_text("utf-8"))
        if data.get("jinja2") != jinja2.__version__ or data.get("options") != OPTIONS:
            return {}
        return dict(data["templates"])
    except Exception:  # noqa: BLE001 - any unreadable file: compile the templates as before
        return {}


def _environment(cache: BytecodeCache | None) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FunctionLoader(_read), bytecode_cache=cache,
                              undefined=jinja2.StrictUndefined, **OPTIONS)


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """One environment per process: Jinja keeps each template it loads in it."""
    entries = _shipped_entries()
    return _environment(Shipped(entries) if entries else None)


def plain_environment() -> jinja2.Environment:
    """The same environment compiling every template itself (the tests' reference)."""
    return _environment(None)


def serialize() -> str:
    """The JSON text of every template compiled by this Jinja."""
    env = plain_environment()
    templates = {}
    for name in template_names():
        source = _read(name)
        # as BaseLoader.load compiles it: FunctionLoader gives no file name
        templates[name] = {"sha1": _checksum(source),
                           "python": env.compile(source, name, None, raw=True)}
    return json.dumps({"jinja2": jinja2.__version__, "options": OPTIONS,
                       "templates": templates}, indent=0, sort_keys=True) + "\n"


def _checksum(source: str) -> str:
    """The checksum Jinja gives a bucket for `source`."""
    return BytecodeCache().get_source_checksum(source)


def write(path: Path | None = None) -> Path:
    target = path or Path(__file__).with_name(SHIPPED)
    target.write_text(serialize(), encoding="utf-8")
    return target


if __name__ == "__main__":
    print(f"wrote {write()}")
