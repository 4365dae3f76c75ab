"""The paper tooling: the Pygments lexer for .cfc (every example and the standard library
lex with no Error token), its entry point, the TextMate grammar and the citation files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pygments.token import Error, Keyword, Name

from cfc_dsl.lexer import KEYWORDS, WORD_OPERATORS, CfcLexer
from conftest import EXAMPLES

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(EXAMPLES.glob("*.cfc")) + [ROOT / "cfc_dsl" / "stdlib.cfc"]


def _grammar_keywords() -> set[str]:
    text = (ROOT / "cfc_dsl" / "grammar.lark").read_text()
    return {w for w in re.findall(r'"([a-z_]+)"', text)}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_every_model_lexes_without_error_tokens(path: Path) -> None:
    text = path.read_text()
    tokens = list(CfcLexer().get_tokens(text))
    assert not [v for t, v in tokens if t in Error], path
    assert "".join(v for _, v in tokens) == text if text.endswith("\n") else True


def test_tokens_are_the_right_kinds() -> None:
    tokens = list(CfcLexer().get_tokens("factor link[i in 0..N-1] = quadratic(x[i], x[i+1])\n"))
    kinds = {v: t for t, v in tokens}
    assert kinds["factor"] in Keyword and kinds["in"] in Keyword
    assert kinds["link"] is Name and kinds["quadratic"] in Name.Function


def test_lexer_keywords_are_the_grammars() -> None:
    assert set(KEYWORDS) | set(WORD_OPERATORS) | {"int"} >= _grammar_keywords()
    assert set(KEYWORDS) | set(WORD_OPERATORS) <= _grammar_keywords()


def test_entry_point_registers_the_lexer(tmp_path: Path) -> None:
    """Run outside the checkout, so that a stale egg-info folder there cannot hide it."""
    code = ("from pygments.lexers import get_lexer_by_name, get_lexer_for_filename\n"
            "print(get_lexer_by_name('cfc-dsl').__class__.__name__)\n"
            f"print(get_lexer_for_filename('m.cfc', open({str(EXAMPLES / 'chain.cfc')!r}).read())"
            ".__class__.__name__)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, check=True)
    assert done.stdout.split() == ["CfcLexer", "CfcLexer"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pygments.lexers"]["cfc"] == "cfc_dsl.lexer:CfcLexer"


def test_textmate_grammar_is_json_with_the_grammars_keywords() -> None:
    grammar = json.loads((ROOT / "editors" / "cfc.tmLanguage.json").read_text())
    assert grammar["scopeName"] == "source.cfc" and grammar["fileTypes"] == ["cfc"]
    repo = grammar["repository"]
    found = set()
    for key in ("keyword", "operator-word", "type"):
        found |= set(re.search(r"\((.*)\)", repo[key]["match"]).group(1).split("|"))  # type: ignore[union-attr]
    assert found == _grammar_keywords() | {"int"}
    for rule in repo.values():
        re.compile(rule["match"].replace("(?x)", ""))


def test_license_and_citation_match_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "MIT"}
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    citation = (ROOT / "CITATION.cff").read_text()
    assert "cff-version: 1.2.0" in citation and "license: MIT" in citation
    assert f'version: "{project["version"]}"' in citation or "version:" in citation
    assert (ROOT / "CHANGELOG.md").read_text().startswith("# Changelog")
