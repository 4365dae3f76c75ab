"""Diagnostics: source spans and user-facing errors.

Every stage reports bad input by raising `CfcError` with a `Span`. The CLI renders it
stanc-style: ``file:line:col: error: message``, the source line, a caret under the span and
a one-sentence hint. No stage prints; no Python traceback reaches a user.
"""

from __future__ import annotations

from enum import Enum

from cfc_dsl.frozen import frozen


@frozen
class Source:
    """A named piece of text that spans point into (a .cfc file or the command line)."""

    name: str
    text: str

    def line(self, number: int) -> str:
        lines = self.text.splitlines()
        return lines[number - 1] if 1 <= number <= len(lines) else ""


@frozen
class Span:
    """A region of a source, 1-based lines and columns, end column exclusive."""

    source: Source
    line: int
    column: int
    end_line: int
    end_column: int

    def __repr__(self) -> str:  # keeps dumps of the syntax tree short and stable
        return f"{self.line}:{self.column}-{self.end_line}:{self.end_column}"


class ErrorKind(Enum):
    SYNTAX = "syntax"
    SEMANTIC = "semantic"
    BIND = "bind"
    DATA = "data"
    ARGUMENT = "argument"
    NUMERIC = "numeric"
    ENVIRONMENT = "environment"

    @property
    def exit_code(self) -> int:
        return 3 if self is ErrorKind.ENVIRONMENT else 2


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@frozen
class Diagnostic:
    """One finding; errors are raised as `CfcError`, warnings and notes are returned."""

    severity: Severity
    message: str
    span: Span | None
    hint: str = ""

    def render(self) -> str:
        return render(self.severity, self.message, self.span, self.hint)


class CfcError(Exception):
    """A user-facing error. `kind` decides the exit code (2 for user input, 3 for environment).

    `CfcError(kind, ...)` builds the subclass for that kind (`CfcSyntaxError`, `CfcBindError`,
    ...), so a caller can catch one stage's errors while every raise site names only the kind.
    `str(err)` is the located message with its caret and hint, as the CLI prints it.
    """

    def __new__(cls, kind: ErrorKind, *args: object, **kwargs: object) -> CfcError:
        if cls is CfcError:
            cls = _BY_KIND.get(kind, CfcError)
        return super().__new__(cls)

    def __init__(self, kind: ErrorKind, message: str, span: Span | None = None, hint: str = ""):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.span = span
        self.hint = hint

    @property
    def exit_code(self) -> int:
        return self.kind.exit_code

    def render(self) -> str:
        return render(Severity.ERROR, self.message, self.span, self.hint)

    def __str__(self) -> str:
        return self.render()

    def __reduce__(self):  # type: ignore[no-untyped-def]  # picklable across processes
        return (CfcError, (self.kind, self.message, self.span, self.hint))

    def _render_traceback_(self) -> list[str]:
        """IPython/Jupyter show this instead of a Python traceback."""
        return self.render().splitlines()


class CfcSyntaxError(CfcError):
    """The text is not a .cfc program (parse stage)."""


class CfcCheckError(CfcError):
    """A well-formed program that does not make sense: an unknown name, a bad call (check)."""


class CfcBindError(CfcError):
    """Sizes, parameters or data that do not fit the model (bind stage, data files)."""


class CfcArgumentError(CfcError):
    """A bad command-line or API argument: an unknown option, a missing file."""


class CfcNumericError(CfcError):
    """A NaN or Inf in the energy or gradient, named by family and instance."""


class CfcEnvironmentError(CfcError):
    """Something missing from the machine (no compiler, a failed build); exit code 3."""


_BY_KIND: dict[ErrorKind, type[CfcError]] = {
    ErrorKind.SYNTAX: CfcSyntaxError,
    ErrorKind.SEMANTIC: CfcCheckError,
    ErrorKind.BIND: CfcBindError,
    ErrorKind.DATA: CfcBindError,
    ErrorKind.ARGUMENT: CfcArgumentError,
    ErrorKind.NUMERIC: CfcNumericError,
    ErrorKind.ENVIRONMENT: CfcEnvironmentError,
}


TAB_WIDTH = 8


def render(severity: Severity, message: str, span: Span | None, hint: str) -> str:
    if span is None:
        lines = [f"cfc: {severity.value}: {message}"]
    else:
        lines = [f"{span.source.name}:{span.line}:{span.column}: {severity.value}: {message}"]
        text = span.source.line(span.line).rstrip()
        gutter = str(span.line)
        end = (span.end_column if span.end_line == span.line and span.end_column > span.column
               else max(span.column + 1, len(text) + 1))
        # tabs become spaces in both lines, so the caret stays under the text it marks
        column = len(text[:span.column - 1].expandtabs(TAB_WIDTH))
        width = len(text[:end - 1].expandtabs(TAB_WIDTH)) - column
        lines.append(f" {gutter} | {text.expandtabs(TAB_WIDTH)}")
        lines.append(f" {' ' * len(gutter)} | {' ' * column}{'^' * max(1, width)}")
    if hint:
        lines.append(f"hint: {hint}")
    return "\n".join(lines)


def did_you_mean(name: str, candidates: list[str] | tuple[str, ...] | set[str]) -> str:
    """A 'did you mean' hint, or a list of what exists when nothing is close."""
    import difflib  # only when reporting an error: not on every start-up (issue 12)

    options = sorted(candidates)
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    if not options:
        return "nothing of that kind is declared yet; declare it before using it"
    shown = ", ".join(options[:8]) + (", ..." if len(options) > 8 else "")
    return f"known names are: {shown}"


def plural(count: int, word: str, many: str | None = None) -> str:
    """'1 dimension', '2 dimensions', '3 indices' (with many='indices')."""
    return f"{count} {word if count == 1 else (many or word + 's')}"
