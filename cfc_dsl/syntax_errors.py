"""Friendly syntax errors: a Lark parse exception to a located `CfcError` with a hint.

Lark reports the token it did not expect and the tokens it would take; this module turns
that into one sentence a user can act on (an unclosed bracket, '**' for '^', a keyword glued
to a name, a stray character pasted from a PDF). The parser (`parser.py`) calls
`syntax_error`; no Lark type escapes the two modules.
"""

from __future__ import annotations

import difflib
import re
import unicodedata

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from cfc_dsl.diagnostics import CfcError, ErrorKind, Source, Span

KEYWORDS = frozenset(
    {"model", "size", "param", "data", "var", "init", "energy", "factor", "weight", "in", "if",
     "and", "or", "not"}
)

DECL_KEYWORDS = ("model", "size", "param", "data", "var", "init", "energy", "factor", "weight")

CLAUSE_WORDS = frozenset({"from", "over", "linear", "geometric", "gated", "per", "instance", "cost"})
"""Keywords only where a clause may start (`weight f = 1 from 0.1 over 40`, `gated cost c`);
not reserved, so models may still use them as names."""

_FRIENDLY = {
    "NAME": "a name", "NUMBER": "a number", "EQUAL": "'='", "LPAR": "'('", "RPAR": "')'",
    "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "SEMICOLON": "';'", "COLON": "':'",
    "RANGE": "'..'", "COMPARE": "a comparison", "ADD_OP": "'+' or '-'", "MINUS": "'-'",
    "PLUS": "'+'", "MUL_OP": "'*', '/', '//' or '%'", "CIRCUMFLEX": "'^'", "$END": "end of file",
}


def _describe(token_types: set[str]) -> str:
    words = set()
    for t in token_types:
        if t.startswith("__") or t == "$END":
            continue
        words.add(f"'{t.lower()}'" if t.lower() in KEYWORDS | CLAUSE_WORDS else
                  _FRIENDLY.get(t, t.lower().strip("_").replace("_", " ")))
    names = sorted(words)
    return ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")


_CHAR_HINTS = {
    "&": "write 'and' to join conditions, as in 'if i > 0 and i < N'",
    "|": "write 'or' to join conditions, as in 'if i == 0 or i == N - 1'",
    "!": "write 'not' to negate a condition, or '!=' to compare",
    '"': "a .cfc file has no strings; names and numbers are written without quotes",
    "'": "a .cfc file has no strings; names and numbers are written without quotes",
    "{": "use '[' and ']' for shapes, indices and ranges",
    "}": "use '[' and ']' for shapes, indices and ranges",
}

_CLOSERS = {"(": ")", "[": "]"}


def _open_bracket(source: Source, end: int) -> tuple[str, int, int] | None:
    """The innermost bracket still open at offset `end`: (char, line, column), or None."""
    stack: list[tuple[str, int, int]] = []
    line, column, in_comment = 1, 1, False
    for ch in source.text[:end]:
        if ch == "\n":
            line, column, in_comment = line + 1, 1, False
            continue
        if ch == "#":
            in_comment = True
        if not in_comment:
            if ch in _CLOSERS:
                stack.append((ch, line, column))
            elif ch in ")]" and stack:
                stack.pop()
        column += 1
    return stack[-1] if stack else None


def _name_allowed(parser: Lark, prefix: str) -> bool:
    """Whether a name may come after `prefix`; where it may not, the contextual lexer reads
    'variable' as the keyword 'var' and the name 'iable'."""
    try:
        interactive = parser.parse_interactive(prefix)
        interactive.exhaust_lexer()
        return "NAME" in interactive.accepts()
    except Exception:  # the prefix itself does not parse: say nothing about glued keywords
        return True


def _accepted(exc: UnexpectedInput) -> set[str]:
    """The tokens the parser would really accept here (Lark's `expected` over-approximates)."""
    interactive = getattr(exc, "interactive_parser", None)
    if interactive is not None:
        try:
            return set(interactive.accepts())
        except Exception:  # fall back to the list Lark gives
            pass
    return set(getattr(exc, "expected", ()) or ())


def syntax_error(exc: UnexpectedInput, source: Source, parser: Lark) -> CfcError:
    """The located message for a Lark parse failure of `source` (parsed by `parser`)."""
    line = getattr(exc, "line", 1) or 1
    column = getattr(exc, "column", 1) or 1
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        char = source.text[pos] if pos < len(source.text) else "?"
        span = Span(source, line, column, line, column + 1)
        hint = _CHAR_HINTS.get(char, "a .cfc file uses names, numbers, the operators "
                               "+ - * / // % ^ and brackets")
        if char == "." and pos and source.text[pos - 1].isdigit():
            hint = f"write a digit after the point, as in {_number_before(source.text, pos)}.0"
        elif char.isalpha() or char.isdigit():  # a letter or digit outside ASCII
            hint = "names use the ASCII letters A-Z and a-z, digits and '_'; write it out in " \
                   "ASCII (Greek letters can go in comments)"
        elif not char.isprintable() or char.isspace():  # pasted from a web page or a PDF
            what = unicodedata.name(char, "a control character").lower()
            hint = f"this invisible character is {what!r}; replace it with a plain space, or " \
                   "delete it"
        shown = char if char.isprintable() and not char.isspace() else f"U+{ord(char):04X}"
        return CfcError(ErrorKind.SYNTAX, f"unexpected character '{shown}'", span, hint)
    expected = _accepted(exc)
    token = getattr(exc, "token", None)
    if isinstance(exc, UnexpectedEOF) or token is None or token.type == "$END":
        lines = source.text.splitlines() or [""]
        code = [n for n, ln in enumerate(lines, 1) if ln.strip() and not ln.lstrip().startswith("#")]
        last = code[-1] if code else 1
        end = len(lines[last - 1].split("#")[0].rstrip())
        span = Span(source, last, max(1, end), last, max(2, end + 1))
        opened = _open_bracket(source, len(source.text))
        if opened and _CLOSERS[opened[0]] in {_CLOSER_CHAR.get(t) for t in expected}:
            char, at_line, at_col = opened
            hint = (f"the '{char}' on line {at_line}, column {at_col} is never closed; "
                    f"add '{_CLOSERS[char]}'")
        else:
            hint = f"the last declaration is incomplete; expected {_describe(expected)}"
        return CfcError(ErrorKind.SYNTAX, "unexpected end of file", span, hint)
    assert isinstance(exc, UnexpectedToken)
    span = Span(source, token.line or line, token.column or column,
                token.end_line or line, token.end_column or column + 1)
    text = str(token)
    if text in KEYWORDS and "NAME" in expected:
        return CfcError(ErrorKind.SYNTAX, f"'{text}' is a keyword and cannot be used as a name",
                        span, f"choose another name, for example '{text}_'")
    if text == "=" and "COMPARE" in expected and "RSQB" in expected and "COMMA" not in expected:
        return CfcError(ErrorKind.SYNTAX, "unexpected '=' in a range filter", span,
                        "use '==' to compare values in a condition")
    if token.type == "NAME" and {"LINEAR", "GEOMETRIC"} <= expected:
        return CfcError(ErrorKind.SYNTAX, f"unknown schedule shape '{text}'", span,
                        "a weight schedule is 'linear' (the default) or 'geometric', as in "
                        "'weight chain = 1.0 from 0.1 over 40 geometric'")
    if text == ":" and "RANGE" in expected:
        return CfcError(ErrorKind.SYNTAX, "unexpected ':' in a range", span,
                        "ranges are written 'i in 0..N' (half-open, two dots)")
    start = token.start_pos or 0
    if text == "*" and start and source.text[start - 1] == "*":
        span = Span(source, span.line, span.column - 1, span.end_line, span.end_column)
        return CfcError(ErrorKind.SYNTAX, "'**' is not an operator", span,
                        "write powers with '^', as in x^2")
    glued = re.search(r"(?:^|\n)[ \t]*([A-Za-z_]\w*)[ \t]*\n?[ \t]*$",
                      source.text[:start])
    if glued:
        word = glued.group(1)
        keyword = next((k for k in DECL_KEYWORDS if word.startswith(k) and word != k), None)
        if keyword and not _name_allowed(parser, source.text[:glued.start(1)]):
            at = glued.start(1)
            at_line = source.text.count("\n", 0, at) + 1
            at_col = at - (source.text.rfind("\n", 0, at) + 1) + 1
            return CfcError(ErrorKind.SYNTAX, f"'{word}' is not a keyword",
                            Span(source, at_line, at_col, at_line, at_col + len(word)),
                            f"did you mean '{keyword}'?")
    message = f"unexpected {_token_words(token)}"
    before = source.line(span.line)[:span.column - 1]
    if token.type == "NAME" and "VAR" in expected and not before.strip():
        starts = sorted(DECL_KEYWORDS)
        close = difflib.get_close_matches(text, starts, n=1, cutoff=0.6)
        return CfcError(ErrorKind.SYNTAX, message, span,
                        f"did you mean '{close[0]}'?" if close else
                        "each declaration starts with a keyword: " + ", ".join(starts))
    opened = _open_bracket(source, start)
    if opened and text in KEYWORDS and _CLOSERS[opened[0]] in {_CLOSER_CHAR.get(t) for t in expected}:
        char, at_line, at_col = opened
        return CfcError(ErrorKind.SYNTAX, message, span,
                        f"the '{char}' on line {at_line}, column {at_col} is never closed; "
                        f"add '{_CLOSERS[char]}' before {_token_words(token)}")
    if token.type in ("NAME", "NUMBER", "LPAR") and "COMMA" in expected and (
            "RPAR" in expected or "RSQB" in expected):
        return CfcError(ErrorKind.SYNTAX, message, span,
                        f"add ',' before {_token_words(token)} if it starts the next item")
    return CfcError(ErrorKind.SYNTAX, message, span, f"expected {_describe(expected)}")


_CLOSER_CHAR = {"RPAR": ")", "RSQB": "]"}


def _number_before(text: str, pos: int) -> str:
    start = pos
    while start and (text[start - 1].isdigit() or text[start - 1] == "."):
        start -= 1
    return text[start:pos]


def _token_words(token: Token) -> str:
    if token.type == "NAME":
        return f"name '{token}'"
    if token.type == "NUMBER":
        return f"number {token}"
    return f"'{token}'"
