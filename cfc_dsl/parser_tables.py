"""The parser's LALR tables, shipped pre-built in `grammar_tables.json`.

Lark builds the tables of grammar.lark in 0.1-0.2 s, most of parse + check of a model on a
fresh cache folder (after that, parser.py keeps them in cfc's private cache folder). Making
them faster is not in our hands: the contextual lexer and the positions cost little of it,
and the LALR analysis is the rest. So the package ships them as JSON, Lark's own serialised
form (`Lark.memo_serialize`, the data its standalone generator and its cache write), read
with `json.loads`: no pickle, nothing that runs. They are used only when the grammar digest
and the Lark version recorded in the file are the ones in use; otherwise (another Lark, a
damaged file) `load` returns None and parser.py builds the tables as before.

    python -m cfc_dsl.parser_tables     # rewrite grammar_tables.json after a grammar change

Lark numbers its states in set-iteration order, so two builds differ in bytes, not in what
they parse: tests/test_parser_tables.py checks that the file is the current grammar's and
that it parses and rejects models exactly as a fresh build does.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import lark
from lark import Lark
from lark.grammar import Rule
from lark.lexer import TerminalDef

OPTIONS: dict[str, Any] = {"start": "program", "parser": "lalr", "propagate_positions": True,
                           "maybe_placeholders": False}
TABLES = "grammar_tables.json"


def grammar_text() -> str:
    return resources.files("cfc_dsl").joinpath("grammar.lark").read_text(encoding="utf-8")


def grammar_digest(grammar: str) -> str:
    return hashlib.sha256(grammar.encode()).hexdigest()


def serialize(grammar: str) -> str:
    """The JSON text of the tables Lark builds for `grammar` with OPTIONS."""
    data, memo = Lark(grammar, **OPTIONS).memo_serialize([TerminalDef, Rule])
    return json.dumps({"grammar_sha256": grammar_digest(grammar), "lark": lark.__version__,
                       "data": data, "memo": memo}, sort_keys=True, separators=(",", ":")) + "\n"


def _int_keys(mapping: dict[str, Any]) -> dict[int, Any]:
    return {int(k): v for k, v in mapping.items()}


def from_json(text: str, grammar: str) -> Lark | None:
    """The parser of serialised tables `text`, or None unless they are `grammar`'s under
    the Lark in use. JSON keys are strings: the three integer-keyed maps get theirs back."""
    tables = json.loads(text)
    if tables.get("grammar_sha256") != grammar_digest(grammar) or tables.get("lark") != lark.__version__:
        return None
    data = tables["data"]
    parse_table = data["parser"]["parser"]
    parse_table["tokens"] = _int_keys(parse_table["tokens"])
    parse_table["states"] = {int(state): _int_keys(actions)
                             for state, actions in parse_table["states"].items()}
    return Lark._load_from_dict(data, _int_keys(tables["memo"]))


def load(grammar: str) -> Lark | None:
    """The parser of the shipped tables, or None where they cannot serve (see module doc)."""
    try:
        text = resources.files("cfc_dsl").joinpath(TABLES).read_text(encoding="utf-8")
        return from_json(text, grammar)
    except Exception:  # noqa: BLE001 - missing, damaged or another Lark's format: build them
        return None


def write(path: Path | None = None) -> Path:
    """Write the tables of the current grammar to `path` (default: the shipped file), unless
    it already holds this grammar's under this Lark: two builds differ in bytes (the state
    numbering), so rewriting a current file would only churn it."""
    target = path or Path(__file__).with_name(TABLES)
    grammar = grammar_text()
    try:
        if from_json(target.read_text(encoding="utf-8"), grammar) is not None:
            return target
    except Exception:  # noqa: BLE001 - missing or damaged: write it
        pass
    target.write_text(serialize(grammar), encoding="utf-8")
    return target


if __name__ == "__main__":
    print(f"wrote {write()}")
