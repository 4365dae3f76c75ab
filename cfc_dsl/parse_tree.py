"""Shape checks of Lark's parse tree, between parsing and building the syntax tree.

`regroup_chains`: LALR parses `a + b + c + ...` into a left-nested tree as deep as the
chain is long, and every later stage (the builder, the checker, derive, the printers)
recurses over the tree. A chain of more than CHAIN_LIMIT terms of `+`/`-` (or of `*`
alone) is rebuilt as a balanced tree of the same terms, depth log2(n), so a flat sum of
thousands of terms compiles. Exact for real arithmetic: `x - t + u` joins as `x - (t - u)`.
Shorter chains keep the shape they were written in (their spans, printed formulas and
generated code do not change).

`check_depth`: what is still nested past MAX_DEPTH after that (`-(-(-(...)))`,
`1 + (1 + (1 + ...))`) is refused with a located error before a stage overflows the stack.
"""

from __future__ import annotations

import re
from typing import Any

from lark import Token, Tree
from lark.tree import Meta

from cfc_dsl.diagnostics import CfcError, ErrorKind, Source, Span

CHAIN_LIMIT = 32  # terms; a longer chain is regrouped (log2 of any real chain is far less)
MAX_DEPTH = 400  # of the syntax tree; every later stage recurses over it


def _chain_kind(node: Any) -> str | None:
    """'add' for a `+`/`-` node, 'mul' for a `*` node, else None (`/ // %` do not regroup)."""
    if not isinstance(node, Tree) or node.data != "binary":
        return None
    op = node.children[1]
    if op.type == "ADD_OP":
        return "add"
    return "mul" if op.type == "MUL_OP" and op.value == "*" else None


def _chain(node: Tree, kind: str) -> list[tuple[str, Any]]:
    """The chain `node` heads, as (operator, term) pairs in source order; the first
    operator is '+' (or '*'), which is how the chain joins whatever contains it."""
    spine = []
    while _chain_kind(node) == kind:
        spine.append(node)
        node = node.children[0]
    items = [("+" if kind == "add" else "*", node)]
    items += [(str(n.children[1]), n.children[2]) for n in reversed(spine)]
    return items


def _edges(node: Any) -> tuple[Meta | Token, Meta | Token]:
    return (node, node) if isinstance(node, Token) else (node.meta, node.meta)


def _joined(left: Any, op: Token, right: Any) -> Tree:
    """A `binary` node over `left` and `right` whose position runs from one to the other."""
    meta = Meta()
    first, last = _edges(left)[0], _edges(right)[1]
    meta.empty = False
    meta.line, meta.column, meta.start_pos = first.line, first.column, first.start_pos
    meta.end_line, meta.end_column = last.end_line, last.end_column
    meta.end_pos = last.end_pos
    return Tree("binary", [left, op, right], meta=meta)


def _balanced(items: list[tuple[str, Any]], template: Token) -> Any:
    """The sum (or product) of `items`, whose operators are relative to a leading '+',
    as a balanced tree. A right half that starts with '-' joins by '-', and its own
    operators flip: x - (t - u) = x - t + u."""
    if len(items) == 1:
        return items[0][1]
    mid = len(items) // 2
    join = items[mid][0]
    right = [(_flip(op) if join == "-" else op, term) for op, term in items[mid:]]
    op = Token.new_borrow_pos(template.type, join, template)
    return _joined(_balanced(items[:mid], template), op, _balanced(right, template))


def _flip(op: str) -> str:
    return {"+": "-", "-": "+"}.get(op, op)


def regroup_chains(tree: Tree) -> Tree:
    """Rebuild every `+`/`-` or `*` chain longer than CHAIN_LIMIT in `tree` as a balanced
    tree (in place; iterative, so it runs before anything could overflow the stack)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        for k, child in enumerate(node.children):
            if not isinstance(child, Tree):
                continue
            kind = _chain_kind(child)
            if kind is not None:
                items = _chain(child, kind)
                if len(items) > CHAIN_LIMIT:
                    child = node.children[k] = _balanced(items, child.children[1])
                    if not isinstance(child, Tree):
                        continue
            stack.append(child)
    return tree


def check_depth(tree: Any, source: Source) -> None:
    """Refuse an expression nested deeper than MAX_DEPTH (iteratively: nothing recursive
    has seen the tree yet)."""
    stack = [(child, 1, child) for child in tree.children if hasattr(child, "children")]
    while stack:
        node, depth, decl = stack.pop()
        if depth > MAX_DEPTH:
            raise CfcError(ErrorKind.SYNTAX, f"this declaration nests its expressions more than "
                           f"{MAX_DEPTH} levels deep", first_line_span(source, decl.meta),
                           "nest fewer parentheses: a flat sum or product of any length is fine, "
                           "and inner parts can be energies or params of their own")
        stack.extend((child, depth + 1, decl) for child in node.children
                     if hasattr(child, "children"))


def first_line_span(source: Source, meta: Any) -> Span:
    """The declaration's keyword and name ('factor local'): the rest may be a very long line."""
    if meta.empty:
        return Span(source, 1, 1, 1, 2)
    head = re.match(r"[^\S\n]*\w+[^\S\n]+\w+|\w+", source.text[meta.start_pos:meta.end_pos])
    width = len(head.group(0)) if head else 1
    return Span(source, meta.line, meta.column, meta.line, meta.column + width)
