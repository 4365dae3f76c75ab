"""Call-argument binding: an energy call's arguments -> the callee's slots and parameters.

`match_arguments` names each argument the call gives (by keyword or position, around the
';' separator); `bind_call` adds the checks for missing ones and fills parameter defaults.
The checker uses both for factors and energy calls; derive.py maps nested energy calls.
"""

from __future__ import annotations

from cfc_dsl import syntax as ast
from cfc_dsl.diagnostics import CfcError, ErrorKind, Span, did_you_mean, plural
from cfc_dsl.model import EnergySpec


def _err(message: str, span: Span, hint: str) -> CfcError:
    return CfcError(ErrorKind.SEMANTIC, message, span, hint)


def match_arguments(energy: EnergySpec, call: ast.Call) -> dict[str, ast.Expr]:
    """The call's given arguments by slot or parameter name, in the order they are written."""
    given: dict[str, ast.Expr] = {}
    names = energy.slots + energy.param_names

    def place(arg: ast.Argument, pool: tuple[str, ...], position: int) -> None:
        if arg.keyword is not None:
            if arg.keyword not in names:
                sig = energy.signature()
                close = did_you_mean(arg.keyword, set(names))
                raise _err(f"'{energy.name}' has no argument '{arg.keyword}'", arg.span,
                           f"{close} The signature is {sig}" if close.startswith("did")
                           else f"use the names in its signature {sig}")
            key = arg.keyword
        else:
            if position >= len(pool):
                if not call.has_separator:
                    what = plural(len(pool), "argument")
                elif pool == energy.slots:
                    what = plural(len(pool), "variable") + " before ';'"
                else:
                    what = plural(len(pool), "parameter") + " after ';'"
                raise _err(f"too many arguments: '{energy.name}' takes {what}", arg.span,
                           f"remove this argument; the signature is {energy.signature()}")
            key = pool[position]
        if key in given:
            raise _err(f"argument '{key}' is given twice", arg.span,
                       f"the signature is {energy.signature()}")
        given[key] = arg.value

    if call.has_separator:
        for i, arg in enumerate(call.slot_args):
            if arg.keyword and arg.keyword in energy.param_names:
                raise _err(f"'{arg.keyword}' is a parameter of '{energy.name}' but is given "
                           "before ';'", arg.span, f"put parameters after ';': {energy.signature()}")
            place(arg, energy.slots, i)
        for i, arg in enumerate(call.param_args):
            if arg.keyword and arg.keyword in energy.slots:
                raise _err(f"'{arg.keyword}' is a variable slot of '{energy.name}' but is "
                           "given after ';'", arg.span, f"put variables before ';': {energy.signature()}")
            place(arg, energy.param_names, i)
    else:
        for i, arg in enumerate(call.slot_args):
            place(arg, names, i)
    return given


def bind_call(energy: EnergySpec, call: ast.Call) -> tuple[list[ast.Expr], list[ast.Expr]]:
    """Put the call's arguments in slot order and parameter order, filling defaults."""
    given = match_arguments(energy, call)
    for slot in energy.slots:
        if slot not in given:
            given_slots = sum(1 for s in energy.slots if s in given)
            n = len(call.slot_args) if call.has_separator else given_slots
            raise _err(f"'{energy.name}' takes {plural(len(energy.slots), 'variable')} but "
                       f"{n} {'is' if n == 1 else 'are'} given; '{slot}' is missing",
                       call.span, f"pass a variable for '{slot}' before ';': {energy.signature()}")
    params: dict[str, ast.Expr] = {}
    for p in energy.params:
        if p.name in given:
            params[p.name] = given[p.name]
        elif p.default is None:
            raise _err(f"'{energy.name}' needs parameter '{p.name}'", call.span,
                       f"add '{p.name} = ...' after ';' ({energy.signature()})")
        else:
            params[p.name] = p.default
    return [given[s] for s in energy.slots], [params[p] for p in energy.param_names]
