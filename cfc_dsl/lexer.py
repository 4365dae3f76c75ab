"""A Pygments lexer for `.cfc` models, so that `pygmentize -l cfc-dsl` (or `pygmentize FILE.cfc`) and LaTeX `minted` work.

Registered as the `cfc` entry point in pyproject.toml. The keywords are the grammar's
(`cfc_dsl/grammar.lark`); built-in functions and the standard library's energies are
highlighted as built-ins. Every character of a valid model gets a token that is not Error.
"""

from __future__ import annotations

import re

from pygments.lexer import RegexLexer, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, Text

KEYWORDS = ("model", "size", "param", "data", "var", "init", "energy", "factor", "weight",
            "in", "if",
            # clause words: keywords only where a clause may start (the grammar still takes
            # them as names elsewhere), highlighted everywhere for simplicity
            "from", "over", "linear", "geometric", "gated", "per", "instance", "cost")
WORD_OPERATORS = ("and", "or", "not")
TYPES = ("int",)
BUILTINS = ("exp", "log", "sqrt", "abs", "min", "max", "relu", "softplus", "sigmoid", "tanh",
            "sin", "cos", "hazard")
STDLIB = ("landau", "order", "gate_local", "compression", "quadratic", "directed_hinge",
          "asym_hinge", "margin_hinge", "gate_benefit", "damped_gate_benefit")

_STATEMENT = re.compile(r"^(factor|var|energy|size|param)\s+[A-Za-z_]", re.M)


class CfcLexer(RegexLexer):
    """Lexer for the cfc factor-graph modelling language."""

    name = "cfc"
    # Pygments' own ColdFusion lexer already owns the alias "cfc" and looks built-ins up
    # before plugins, so `-l cfc` reaches ColdFusion; "cfc-dsl" reaches this lexer.
    aliases = ["cfc-dsl", "cfcdsl", "cfc"]
    filenames = ["*.cfc"]
    mimetypes = ["text/x-cfc"]
    url = "https://github.com/cfc-dsl/cfc"

    priority = 0.2  # above ColdFusion's for *.cfc files

    def analyse_text(text: str) -> float:  # type: ignore[misc]  # Pygments' static hook
        return 0.6 if _STATEMENT.search(text) else 0.0

    tokens = {
        "root": [
            (r"\s+", Text.Whitespace),
            (r"#[^\n]*", Comment.Single),
            (words(KEYWORDS, suffix=r"\b"), Keyword),
            (words(WORD_OPERATORS, suffix=r"\b"), Operator.Word),
            (words(TYPES, suffix=r"\b"), Keyword.Type),
            (words(BUILTINS, suffix=r"\b"), Name.Builtin),
            (words(STDLIB, suffix=r"\b"), Name.Function.Magic),
            (r"(\d+(\.\d+)?|\.\d+)[eE][+-]?\d+", Number.Float),
            (r"\d+\.\d+|\.\d+", Number.Float),
            (r"\d+", Number.Integer),
            (r"[A-Za-z_][A-Za-z_0-9]*", Name),
            (r"\.\.", Operator),
            (r"//|<=|>=|==|!=|[-+*/^%<>=]", Operator),
            (r"[()\[\],;:]", Punctuation),
        ],
    }
