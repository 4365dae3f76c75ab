"""Parse stage: .cfc source text to the syntax tree (`syntax.Program`).

The grammar lives in `grammar.lark`; Lark (LALR, contextual lexer) parses it and a
Transformer builds the frozen dataclasses of `syntax.py`, each with its span. Lark's
exceptions become `CfcError`s with a caret and a hint; no Lark type escapes this module.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from cfc_dsl import syntax as ast
from cfc_dsl.diagnostics import CfcError, ErrorKind, Source, Span

KEYWORDS = frozenset(
    {"model", "size", "param", "data", "var", "init", "energy", "factor", "weight", "in", "if",
     "and", "or", "not"}
)

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
                maybe_placeholders=False, cache=False)


def parse(text: str, name: str) -> ast.Program:
    """Parse `text` (named `name` in messages) into a `Program`, or raise `CfcError`."""
    source = Source(name, text)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, source) from None
    decls = _Builder(source).transform(tree)
    return ast.Program(decls=tuple(decls.children if hasattr(decls, "children") else decls),
                       source_name=name)


def _describe(token_types: set[str]) -> str:
    names = sorted({_FRIENDLY.get(t, t.lower().strip("_").replace("_", " ")) for t in token_types
                    if not t.startswith("__")})
    if any(t.upper() in KEYWORDS or t in KEYWORDS for t in token_types):
        names = [n for n in names if n.upper() not in KEYWORDS]
    return ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")


def _syntax_error(exc: UnexpectedInput, source: Source) -> CfcError:
    line = getattr(exc, "line", 1) or 1
    column = getattr(exc, "column", 1) or 1
    if isinstance(exc, UnexpectedCharacters):
        char = source.text[exc.pos_in_stream] if exc.pos_in_stream < len(source.text) else "?"
        span = Span(source, line, column, line, column + 1)
        hint = "a .cfc file uses names, numbers, operators + - * / // % ^ and brackets"
        if char == "*" or char == "&" or char == "|":
            hint = "use '^' for powers and 'and'/'or'/'not' in conditions"
        return CfcError(ErrorKind.SYNTAX, f"unexpected character '{char}'", span, hint)
    if isinstance(exc, UnexpectedEOF):
        lines = source.text.rstrip().splitlines() or [""]
        last = len(lines)
        span = Span(source, last, max(1, len(lines[-1])), last, max(2, len(lines[-1]) + 1))
        return CfcError(ErrorKind.SYNTAX, "unexpected end of file", span,
                        f"the last declaration is incomplete; expected {_describe(exc.expected)}")
    assert isinstance(exc, UnexpectedToken)
    token = exc.token
    if token.type == "$END":
        lines = source.text.rstrip().splitlines() or [""]
        last = len(lines)
        span = Span(source, last, max(1, len(lines[-1])), last, max(2, len(lines[-1]) + 1))
        return CfcError(ErrorKind.SYNTAX, "unexpected end of file", span,
                        f"the last declaration is incomplete; expected {_describe(exc.expected)}")
    span = Span(source, token.line or line, token.column or column,
                token.end_line or line, token.end_column or column + 1)
    text = str(token)
    expected = set(exc.expected)
    if text in KEYWORDS and "NAME" in expected:
        return CfcError(ErrorKind.SYNTAX, f"'{text}' is a keyword and cannot be used as a name",
                        span, f"choose another name, for example '{text}_'")
    if text == "=" and "RANGE" not in expected and "COMPARE" in str(expected):
        return CfcError(ErrorKind.SYNTAX, "unexpected '='", span,
                        "use '==' to compare values in a condition")
    if text == ":" and "RANGE" in expected:
        return CfcError(ErrorKind.SYNTAX, "unexpected ':'", span,
                        "ranges are written 'i in 0..N' (half-open, two dots)")
    return CfcError(ErrorKind.SYNTAX, f"unexpected {_token_words(token)}", span,
                    f"expected {_describe(expected)}")


def _token_words(token: Token) -> str:
    if token.type == "NAME":
        return f"name '{token}'"
    if token.type == "NUMBER":
        return f"number {token}"
    return f"'{token}'"


def _span(source: Source, meta: Any) -> Span:
    return Span(source, meta.line, meta.column, meta.end_line, meta.end_column)


def _tok_span(source: Source, tok: Token) -> Span:
    return Span(source, tok.line, tok.column, tok.end_line, tok.end_column)


@v_args(meta=True)
class _Builder(Transformer):
    """Lark tree -> syntax dataclasses. Each method is one grammar rule."""

    def __init__(self, source: Source):
        super().__init__()
        self.src = source

    def program(self, meta: Any, children: list[Any]) -> list[Any]:
        return children

    # -- declarations
    def model_decl(self, meta: Any, c: list[Any]) -> ast.ModelDecl:
        return ast.ModelDecl(str(c[0]), _span(self.src, meta))

    def size_decl(self, meta: Any, c: list[Any]) -> ast.SizeDecl:
        return ast.SizeDecl(str(c[0]), c[1], _span(self.src, meta))

    def param_decl(self, meta: Any, c: list[Any]) -> ast.ParamDecl:
        shape = c[1] if len(c) == 3 else ()
        return ast.ParamDecl(str(c[0]), shape, c[-1], _span(self.src, meta))

    def data_decl(self, meta: Any, c: list[Any]) -> ast.DataDecl:
        shape: tuple[ast.Expr, ...] = ()
        dtype = None
        dtype_span = None
        for item in c[1:]:
            if isinstance(item, tuple):
                shape = item
            else:
                dtype, dtype_span = item[0], item[1]
        return ast.DataDecl(str(c[0]), shape, dtype, _span(self.src, meta), dtype_span)

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
        return ast.VarDecl(str(c[0]), shape, lower, upper, initial, _span(self.src, meta))

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
        return ast.EnergyDecl(str(name), slots, params, c[-1], _span(self.src, meta),
                              _tok_span(self.src, name))

    def slot_list(self, meta: Any, c: list[Any]) -> tuple[str, ...]:
        return tuple(str(t) for t in c)

    def eparam_list(self, meta: Any, c: list[Any]) -> tuple[ast.EnergyParam, ...]:
        return tuple(c)

    def eparam(self, meta: Any, c: list[Any]) -> ast.EnergyParam:
        return ast.EnergyParam(str(c[0]), c[1] if len(c) > 1 else None, _span(self.src, meta))

    def factor_decl(self, meta: Any, c: list[Any]) -> ast.FactorDecl:
        ranges = c[1] if len(c) == 3 else None
        return ast.FactorDecl(str(c[0]), ranges, c[-1], _span(self.src, meta),
                              _tok_span(self.src, c[0]))

    def weight_decl(self, meta: Any, c: list[Any]) -> ast.WeightDecl:
        return ast.WeightDecl(str(c[0]), c[1], _span(self.src, meta), _tok_span(self.src, c[0]))

    def ranges(self, meta: Any, c: list[Any]) -> ast.Ranges:
        cond = c[-1] if c and isinstance(c[-1], list) else None
        items = tuple(x for x in c if isinstance(x, ast.Range))
        return ast.Ranges(items, cond[1] if cond else None, _span(self.src, meta))

    def range(self, meta: Any, c: list[Any]) -> ast.Range:
        return ast.Range(str(c[0]), c[1], c[3], _span(self.src, meta))

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
