"""Parse stage: .cfc source text to the syntax tree (`syntax.Program`).

The grammar lives in `grammar.lark`; Lark (LALR, contextual lexer) parses it and a
Transformer builds the frozen dataclasses of `syntax.py`, each with its span. Lark's
exceptions become `CfcError`s with a caret and a hint; no Lark type escapes this module.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from functools import lru_cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from cfc_dsl import syntax as ast
from cfc_dsl.diagnostics import CfcError, ErrorKind, Source, Span

KEYWORDS = frozenset(
    {"model", "size", "param", "data", "var", "init", "energy", "factor", "weight", "in", "if",
     "and", "or", "not"}
)

_DECL_KEYWORDS = ("model", "size", "param", "data", "var", "init", "energy", "factor", "weight")

_FRIENDLY = {
    "NAME": "a name", "NUMBER": "a number", "EQUAL": "'='", "LPAR": "'('", "RPAR": "')'",
    "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "SEMICOLON": "';'", "COLON": "':'",
    "RANGE": "'..'", "COMPARE": "a comparison", "ADD_OP": "'+' or '-'", "MINUS": "'-'",
    "PLUS": "'+'", "MUL_OP": "'*', '/', '//' or '%'", "CIRCUMFLEX": "'^'", "$END": "end of file",
}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = resources.files("cfc_dsl").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, start="program", parser="lalr", propagate_positions=True,
                maybe_placeholders=False, cache=True)  # a pickled parser in the temp dir: ~50 ms off every start


def parse(text: str, name: str) -> ast.Program:
    """Parse `text` (named `name` in messages) into a `Program`, or raise `CfcError`."""
    source = Source(name, text)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, source) from None
    _check_depth(tree, source)
    try:
        decls = _Builder(source).transform(tree)
    except VisitError as exc:  # a builder rule rejected a name; Lark wraps what it raises
        if isinstance(exc.orig_exc, CfcError):
            raise exc.orig_exc from None
        raise
    return ast.Program(decls=tuple(decls.children if hasattr(decls, "children") else decls),
                       source_name=name)


MAX_DEPTH = 400  # of the syntax tree; every later stage recurses over it


def _check_depth(tree: Any, source: Source) -> None:
    """Refuse an expression nested deeper than MAX_DEPTH (a sum of a few hundred terms is
    that deep: '+' nests to the left) before a recursive stage overflows Python's stack."""
    stack = [(child, 1, child) for child in tree.children if hasattr(child, "children")]
    while stack:
        node, depth, decl = stack.pop()
        if depth > MAX_DEPTH:
            raise CfcError(ErrorKind.SYNTAX, f"this declaration nests its expressions more than "
                           f"{MAX_DEPTH} levels deep", _first_line_span(source, decl.meta),
                           "split it: a long sum can be several energies called from one, or a "
                           "factor family over a range instead of one term per element")
        stack.extend((child, depth + 1, decl) for child in node.children
                     if hasattr(child, "children"))


def _first_line_span(source: Source, meta: Any) -> Span:
    """The declaration's keyword and name ('factor local'): the rest may be a very long line."""
    if meta.empty:
        return Span(source, 1, 1, 1, 2)
    head = re.match(r"[^\S\n]*\w+[^\S\n]+\w+|\w+", source.text[meta.start_pos:meta.end_pos])
    width = len(head.group(0)) if head else 1
    return Span(source, meta.line, meta.column, meta.line, meta.column + width)


def _describe(token_types: set[str]) -> str:
    words = set()
    for t in token_types:
        if t.startswith("__") or t == "$END":
            continue
        words.add(f"'{t.lower()}'" if t.lower() in KEYWORDS else
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


def _name_allowed(prefix: str) -> bool:
    """Whether a name may come after `prefix`; where it may not, the contextual lexer reads
    'variable' as the keyword 'var' and the name 'iable'."""
    try:
        interactive = _parser().parse_interactive(prefix)
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


def _syntax_error(exc: UnexpectedInput, source: Source) -> CfcError:
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
        keyword = next((k for k in _DECL_KEYWORDS if word.startswith(k) and word != k), None)
        if keyword and not _name_allowed(source.text[:glued.start(1)]):
            at = glued.start(1)
            at_line = source.text.count("\n", 0, at) + 1
            at_col = at - (source.text.rfind("\n", 0, at) + 1) + 1
            return CfcError(ErrorKind.SYNTAX, f"'{word}' is not a keyword",
                            Span(source, at_line, at_col, at_line, at_col + len(word)),
                            f"did you mean '{keyword}'?")
    message = f"unexpected {_token_words(token)}"
    before = source.line(span.line)[:span.column - 1]
    if token.type == "NAME" and "VAR" in expected and not before.strip():
        starts = sorted(_DECL_KEYWORDS)
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


def _span(source: Source, meta: Any) -> Span:
    return Span(source, meta.line, meta.column, meta.end_line, meta.end_column)


def _tok_span(source: Source, tok: Token) -> Span:
    line, column = tok.line or 1, tok.column or 1
    return Span(source, line, column, tok.end_line or line, tok.end_column or column + 1)


@v_args(meta=True)
class _Builder(Transformer):
    """Lark tree -> syntax dataclasses. Each method is one grammar rule."""

    def __init__(self, source: Source):
        super().__init__()
        self.src = source

    def _new_name(self, tok: Token, meta: Any = None) -> str:
        """A name being declared; keywords are only ever lexed as NAME where they cannot clash.
        With the declaration's `meta`, also reject a keyword glued to the name ('variable x'
        lexes as 'var iable' where no name can start a declaration)."""
        if str(tok) in KEYWORDS:
            raise CfcError(ErrorKind.SYNTAX, f"'{tok}' is a keyword and cannot be used as a name",
                           _tok_span(self.src, tok), f"choose another name, for example '{tok}_'")
        if meta is not None and tok.start_pos is not None:
            keyword = self.src.text[meta.start_pos:tok.start_pos]
            if keyword in _DECL_KEYWORDS:
                word = keyword + str(tok)
                span = Span(self.src, meta.line, meta.column, meta.line, meta.column + len(word))
                raise CfcError(ErrorKind.SYNTAX, f"'{word}' is not a keyword", span,
                               f"did you mean '{keyword}'?")
        return str(tok)

    def program(self, meta: Any, children: list[Any]) -> list[Any]:
        return children

    # -- declarations
    def model_decl(self, meta: Any, c: list[Any]) -> ast.ModelDecl:
        return ast.ModelDecl(self._new_name(c[0], meta), _span(self.src, meta))

    def size_decl(self, meta: Any, c: list[Any]) -> ast.SizeDecl:
        return ast.SizeDecl(self._new_name(c[0], meta), c[1], _span(self.src, meta))

    def param_decl(self, meta: Any, c: list[Any]) -> ast.ParamDecl:
        shape = c[1] if len(c) == 3 else ()
        return ast.ParamDecl(self._new_name(c[0], meta), shape, c[-1], _span(self.src, meta))

    def data_decl(self, meta: Any, c: list[Any]) -> ast.DataDecl:
        shape: tuple[ast.Expr, ...] = ()
        dtype = None
        dtype_span = None
        for item in c[1:]:
            if isinstance(item, tuple):
                shape = item
            else:
                dtype, dtype_span = item[0], item[1]
        return ast.DataDecl(self._new_name(c[0], meta), shape, dtype, _span(self.src, meta), dtype_span)

    def dtype(self, meta: Any, c: list[Any]) -> list[Any]:
        return [str(c[0]), _tok_span(self.src, c[0])]

    def var_decl(self, meta: Any, c: list[Any]) -> ast.VarDecl:
        shape: tuple[ast.Expr, ...] = ()
        lower = upper = initial = None
        for item in c[1:]:
            if isinstance(item, tuple):
                shape = item
            elif isinstance(item, list) and item[0] == "bounds":
                lower, upper = item[1], item[2]
            elif isinstance(item, list) and item[0] == "initial":
                initial = item[1]
        return ast.VarDecl(self._new_name(c[0], meta), shape, lower, upper, initial, _span(self.src, meta))

    def bounds(self, meta: Any, c: list[Any]) -> list[Any]:
        return ["bounds", c[0], c[1]]

    def initial(self, meta: Any, c: list[Any]) -> list[Any]:
        return ["initial", c[0]]

    def shape(self, meta: Any, c: list[Any]) -> tuple[ast.Expr, ...]:
        return tuple(c)

    def init_decl(self, meta: Any, c: list[Any]) -> ast.InitDecl:
        ranges = c[1] if len(c) == 3 else None
        return ast.InitDecl(str(c[0]), ranges, c[-1], _span(self.src, meta))

    def energy_decl(self, meta: Any, c: list[Any]) -> ast.EnergyDecl:
        name, slots = c[0], c[1]
        params = c[2] if len(c) == 4 else ()
        return ast.EnergyDecl(self._new_name(name, meta), slots, params, c[-1], _span(self.src, meta),
                              _tok_span(self.src, name))

    def slot_list(self, meta: Any, c: list[Any]) -> tuple[str, ...]:
        return tuple(self._new_name(t) for t in c)

    def eparam_list(self, meta: Any, c: list[Any]) -> tuple[ast.EnergyParam, ...]:
        return tuple(c)

    def eparam(self, meta: Any, c: list[Any]) -> ast.EnergyParam:
        return ast.EnergyParam(self._new_name(c[0]), c[1] if len(c) > 1 else None, _span(self.src, meta))

    def factor_decl(self, meta: Any, c: list[Any]) -> ast.FactorDecl:
        ranges = c[1] if len(c) == 3 else None
        return ast.FactorDecl(self._new_name(c[0], meta), ranges, c[-1], _span(self.src, meta),
                              _tok_span(self.src, c[0]))

    def weight_decl(self, meta: Any, c: list[Any]) -> ast.WeightDecl:
        return ast.WeightDecl(str(c[0]), c[1], _span(self.src, meta), _tok_span(self.src, c[0]))

    def ranges(self, meta: Any, c: list[Any]) -> ast.Ranges:
        cond = c[-1] if c and isinstance(c[-1], list) else None
        items = tuple(x for x in c if isinstance(x, ast.Range))
        return ast.Ranges(items, cond[1] if cond else None, _span(self.src, meta))

    def range(self, meta: Any, c: list[Any]) -> ast.Range:
        return ast.Range(self._new_name(c[0]), c[1], c[3], _span(self.src, meta))

    def condition(self, meta: Any, c: list[Any]) -> list[Any]:
        return ["condition", c[0]]

    # -- expressions
    def number(self, meta: Any, c: list[Any]) -> ast.Number:
        text = str(c[0])
        is_int = text.isdigit()
        return ast.Number(float(text), is_int, _span(self.src, meta))

    def name(self, meta: Any, c: list[Any]) -> ast.Name:
        return ast.Name(str(c[0]), _span(self.src, meta))

    def index(self, meta: Any, c: list[Any]) -> ast.Index:
        return ast.Index(str(c[0]), tuple(c[1:]), _span(self.src, meta), _tok_span(self.src, c[0]))

    def call(self, meta: Any, c: list[Any]) -> ast.Call:
        slot_args, param_args, sep = (c[1] if len(c) > 1 else ((), (), False))
        return ast.Call(str(c[0]), slot_args, param_args, sep, _span(self.src, meta),
                        _tok_span(self.src, c[0]))

    def call_args(self, meta: Any, c: list[Any]) -> tuple[Any, Any, bool]:
        sep = len(c) == 2 or self._has_semicolon(meta)
        return tuple(c[0]), tuple(c[1]) if len(c) > 1 else (), sep

    def call_args_params_only(self, meta: Any, c: list[Any]) -> tuple[Any, Any, bool]:
        return (), tuple(c[0]), True

    def _has_semicolon(self, meta: Any) -> bool:
        return ";" in self.src.text[meta.start_pos:meta.end_pos]

    def arg_list(self, meta: Any, c: list[Any]) -> list[ast.Argument]:
        return c

    def positional(self, meta: Any, c: list[Any]) -> ast.Argument:
        return ast.Argument(None, c[0], _span(self.src, meta))

    def keyword(self, meta: Any, c: list[Any]) -> ast.Argument:
        return ast.Argument(str(c[0]), c[1], _span(self.src, meta))

    def negate(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.Unary("-", c[0], _span(self.src, meta))

    def not_op(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.Unary("not", c[0], _span(self.src, meta))

    def binary(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.Binary(str(c[1]), c[0], c[2], _span(self.src, meta))

    def compare_op(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.Binary(str(c[1]), c[0], c[2], _span(self.src, meta))

    def power_op(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.Binary("^", c[0], c[1], _span(self.src, meta))

    def and_op(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.Binary("and", c[0], c[1], _span(self.src, meta))

    def or_op(self, meta: Any, c: list[Any]) -> ast.Expr:
        return ast.Binary("or", c[0], c[1], _span(self.src, meta))
