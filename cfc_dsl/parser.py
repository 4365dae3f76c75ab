"""Parse stage: .cfc source text to the syntax tree (`syntax.Program`).

The grammar lives in `grammar.lark`; Lark (LALR, contextual lexer, its tables shipped
pre-built: parser_tables.py) parses it and a Transformer builds the frozen dataclasses of `syntax.py`, each with its span. Lark's
exceptions become `CfcError`s with a caret and a hint (`syntax_errors.py`).
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import lark
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedInput, VisitError

from cfc_dsl import parser_tables
from cfc_dsl import syntax as ast
from cfc_dsl.cachedir import cache_root, private
from cfc_dsl.diagnostics import CfcError, ErrorKind, Source, Span
from cfc_dsl.parse_tree import check_depth, regroup_chains
from cfc_dsl.parser_tables import grammar_text
from cfc_dsl.syntax_errors import DECL_KEYWORDS, KEYWORDS, syntax_error


def _table_cache(grammar: str) -> str | bool:
    """Where Lark may keep its parse tables, or False for no cache.

    Lark unpickles that file, so it must be a place no other user can write: a 0700 folder
    `parser/` in the cfc cache, never Lark's default in the shared temp folder (whose name
    anyone can predict and plant). Building the tables takes 75-150 ms; loading them ~10 ms.
    """
    if not hasattr(os, "getuid"):  # no owner to check against: build the tables each time
        return False
    folder = cache_root() / "parser"
    digest = hashlib.sha256(grammar.encode()).hexdigest()[:16]
    path = folder / f"lark-{digest}-{lark.__version__}-py{sys.version_info[0]}{sys.version_info[1]}.pickle"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not private(folder, is_dir=True):
            return False
        if os.path.lexists(path) and not private(path, is_dir=False):
            return False
    except OSError:  # a read-only or missing home: parse without the cache
        return False
    return str(path)


@lru_cache(maxsize=1)
def _parser() -> Lark:
    """The shipped tables where they fit this grammar and Lark (parser_tables.py), else
    Lark's own build, kept in the private cache folder."""
    grammar = grammar_text()
    shipped = parser_tables.load(grammar)
    if shipped is not None:
        return shipped
    return Lark(grammar, **parser_tables.OPTIONS, cache=_table_cache(grammar))


def parse(text: str, name: str) -> ast.Program:
    """Parse `text` (named `name` in messages) into a `Program`, or raise `CfcError`."""
    source = Source(name, text)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise syntax_error(exc, source, _parser()) from None
    check_depth(regroup_chains(tree), source)
    try:
        decls = _Builder(source).transform(tree)
    except VisitError as exc:  # a builder rule rejected a name; Lark wraps what it raises
        if isinstance(exc.orig_exc, CfcError):
            raise exc.orig_exc from None
        raise
    return ast.Program(decls=tuple(decls.children if hasattr(decls, "children") else decls),
                       source_name=name)


def _span(source: Source, meta: Any) -> Span:
    return Span(source, meta.line, meta.column, meta.end_line, meta.end_column)


def _tok_span(source: Source, tok: Token) -> Span:
    line, column = tok.line or 1, tok.column or 1
    return Span(source, line, column, tok.end_line or line, tok.end_column or column + 1)


@dataclass(frozen=True)
class _Source:
    """A data declaration's `from ...` clause, told apart from its shape and dtype."""

    expr: ast.Expr


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
            if keyword in DECL_KEYWORDS:
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
        source = None
        for item in c[1:]:
            if isinstance(item, tuple):
                shape = item
            elif isinstance(item, _Source):
                source = item.expr
            else:
                dtype, dtype_span = item[0], item[1]
        return ast.DataDecl(self._new_name(c[0], meta), shape, dtype, _span(self.src, meta),
                            dtype_span, source)

    def data_source(self, meta: Any, c: list[Any]) -> _Source:
        return _Source(c[0])

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
        gate = c.pop() if isinstance(c[-1], ast.GateClause) else None
        ranges = c[1] if len(c) == 3 else None
        return ast.FactorDecl(self._new_name(c[0], meta), ranges, c[-1], _span(self.src, meta),
                              _tok_span(self.src, c[0]), gate)

    def gate(self, meta: Any, c: list[Any]) -> ast.GateClause:
        return ast.GateClause(c[-1], len(c) == 2, _span(self.src, meta))

    def per_instance(self, meta: Any, c: list[Any]) -> bool:
        return True

    def weight_decl(self, meta: Any, c: list[Any]) -> ast.WeightDecl:
        schedule = c[2] if len(c) == 3 else None
        return ast.WeightDecl(str(c[0]), c[1], _span(self.src, meta), _tok_span(self.src, c[0]),
                              schedule)

    def schedule(self, meta: Any, c: list[Any]) -> ast.ScheduleClause:
        shape, shape_span = (c[2] if len(c) == 3 else (None, None))
        return ast.ScheduleClause(c[0], c[1], shape, _span(self.src, meta), shape_span)

    def linear(self, meta: Any, c: list[Any]) -> tuple[str, Span]:
        return "linear", _span(self.src, meta)

    def geometric(self, meta: Any, c: list[Any]) -> tuple[str, Span]:
        return "geometric", _span(self.src, meta)

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
