"""The shipped parser tables (cfc_dsl/grammar_tables.json, cfc_dsl/parser_tables.py).

They must be the current grammar's, parse and reject every model of the repository exactly
as tables Lark builds now, and give way to a fresh build wherever they cannot serve.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import lark
import pytest
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from cfc_dsl import parser_tables
from cfc_dsl.diagnostics import CfcError, Source
from cfc_dsl.syntax_errors import syntax_error

ROOT = Path(__file__).resolve().parents[1]
CORPUS = sorted(p for p in ROOT.rglob("*.cfc")
                if not {".venv", "build"} & set(p.relative_to(ROOT).parts))
SHIPPED = Path(parser_tables.__file__).with_name(parser_tables.TABLES)
REGENERATE = "run `python -m cfc_dsl.parser_tables` and commit cfc_dsl/grammar_tables.json"


@lru_cache(maxsize=1)
def built() -> Lark:
    return Lark(parser_tables.grammar_text(), **parser_tables.OPTIONS)


@lru_cache(maxsize=1)
def shipped() -> Lark:
    parser = parser_tables.load(parser_tables.grammar_text())
    if parser is None:
        pytest.skip(f"the shipped tables are for Lark {_recorded()['lark']}, this is "
                    f"{lark.__version__}: the parser builds its own")
    return parser


def _recorded() -> dict[str, object]:
    return dict(json.loads(SHIPPED.read_text(encoding="utf-8")))


def _flat(tree: Tree) -> list[object]:
    """The tree as a list, walked without recursion (a deeply nested model is in the
    corpus): each node with its rule, its positions and its number of children; tokens
    with their type, text and positions."""
    out: list[object] = []
    todo: list[object] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, Tree):
            meta = node.meta
            out.append((node.data, len(node.children), getattr(meta, "line", None),
                        getattr(meta, "column", None), getattr(meta, "end_line", None),
                        getattr(meta, "end_column", None)))
            todo.extend(reversed(node.children))
        elif isinstance(node, Token):
            out.append((node.type, str(node), node.line, node.column, node.end_line,
                        node.end_column))
        else:
            out.append(node)
    return out


def _outcome(parser: Lark, text: str, name: str) -> object:
    """The tree, or the located message cfc makes of the parse error."""
    try:
        return _flat(parser.parse(text))
    except UnexpectedInput as exc:
        error = syntax_error(exc, Source(name, text), parser)
        assert isinstance(error, CfcError)
        return ("error", error.message, error.hint, error.span and
                (error.span.line, error.span.column, error.span.end_line, error.span.end_column))


def test_the_shipped_tables_are_the_current_grammars() -> None:
    assert _recorded()["grammar_sha256"] == parser_tables.grammar_digest(
        parser_tables.grammar_text()), f"grammar.lark changed: {REGENERATE}"


def test_the_corpus_is_there() -> None:
    assert len(CORPUS) > 100 and any(p.parent.name == "bad" for p in CORPUS)


@pytest.mark.parametrize("path", CORPUS, ids=[str(p.relative_to(ROOT)) for p in CORPUS])
def test_shipped_tables_parse_as_a_fresh_build(path: Path) -> None:
    text = path.read_bytes().decode("utf-8", errors="replace")  # one file is not UTF-8
    assert _outcome(shipped(), text, path.name) == _outcome(built(), text, path.name)


@pytest.mark.parametrize("text", [
    "", "model", "size N = ", "var x in [0, 1\n", "energy e(u) = u +\n", "factor f = e(x",
    "var var x\n", "size N = 3 3\n", "param p = 1 ;;\n", "energy e(u; a = ) = u\n",
    "weight = 2\n", "var x[N] init x[i] = 0 for\n", "\u00e9nergie e(u) = u\n",
])
def test_shipped_tables_reject_as_a_fresh_build(text: str) -> None:
    assert _outcome(shipped(), text, "m.cfc") == _outcome(built(), text, "m.cfc")


def test_tables_of_another_grammar_or_lark_are_not_used() -> None:
    text, grammar = SHIPPED.read_text(encoding="utf-8"), parser_tables.grammar_text()
    assert parser_tables.from_json(text, grammar + "\n// changed\n") is None
    other = dict(json.loads(text), lark="0.0.0")
    assert parser_tables.from_json(json.dumps(other), grammar) is None


def test_a_missing_or_damaged_file_falls_back_to_building(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    grammar = parser_tables.grammar_text()
    for content in (None, "{not json", '{"grammar_sha256": 1}', SHIPPED.read_text()[:5000]):
        folder = tmp_path / str(abs(hash(content)))
        folder.mkdir()
        if content is not None:
            (folder / parser_tables.TABLES).write_text(content)
        monkeypatch.setattr(parser_tables.resources, "files", lambda _pkg, f=folder: f)
        assert parser_tables.load(grammar) is None


def test_the_writer_round_trips(tmp_path: Path) -> None:
    path = parser_tables.write(tmp_path / "tables.json")
    parser = parser_tables.from_json(path.read_text(), parser_tables.grammar_text())
    assert parser is not None
    text = (ROOT / "examples" / "sequence_redemption.cfc").read_text()
    assert _flat(parser.parse(text)) == _flat(built().parse(text))


def test_a_fresh_cache_builds_no_tables(tmp_path: Path) -> None:
    """With the shipped tables in use, parsing writes nothing into the cache folder."""
    shipped()
    cache = tmp_path / "cache"
    code = ("from cfc_dsl.parser import parse\n"
            f"parse(open({str(ROOT / 'examples' / 'chain.cfc')!r}).read(), 'm.cfc')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "CFC_CACHE_DIR": str(cache)}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert not (cache / "parser").exists()
