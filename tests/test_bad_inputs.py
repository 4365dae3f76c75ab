"""Bad inputs: every case in tests/bad/ fails with a located message, a caret and a hint.

A case is `tests/bad/NAME.cfc` (or `tests/bad/TOPIC/NAME.cfc`), optionally `NAME.args`
(extra command-line arguments, one per line, paths relative to the repository root) and the
golden `NAME.expected`: the exact stderr of `cfc run tests/bad/NAME.cfc ARGS...` followed
by a line `exit: CODE`. Regenerate the goldens with `pytest tests/test_bad_inputs.py --update-golden` and review the diff.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT, check_golden, run_cfc

BAD = ROOT / "tests" / "bad"
CASES = sorted(BAD.rglob("*.cfc"))  # tests/bad/NAME.cfc and tests/bad/TOPIC/NAME.cfc
LOCATED = re.compile(r"^(\S+|<command line>):\d+:\d+: error: \S")
CARET = re.compile(r"^ +\| +\^+$")


def _args(case: Path) -> list[str]:
    path = case.with_suffix(".args")
    if not path.exists():
        return []
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _run(case: Path, *extra: str) -> tuple[str, int]:
    model = case.relative_to(ROOT).as_posix()
    result = run_cfc("run", model, *_args(case), *extra)
    return result.stderr, result.returncode


def test_enough_cases() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES,
                         ids=[c.relative_to(BAD).with_suffix("").as_posix() for c in CASES])
def test_bad_input(case: Path, update_golden: bool) -> None:
    stderr, code = _run(case)
    check_golden(case.with_suffix(".expected"), f"{stderr}exit: {code}\n", update_golden)
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert "internal error" not in stderr
    lines = stderr.splitlines()
    assert LOCATED.match(lines[0]), f"the first line has no file:line:col: {lines[0]!r}"
    assert any(CARET.match(line) for line in lines), "no caret line"
    assert any(line.startswith("hint: ") for line in lines), "no hint"
    # goldens must not depend on the machine: no absolute paths, no cache directory
    assert str(ROOT) not in stderr
    assert not re.search(r"(^|[\s'\"])/(tmp|home|root|usr|var)/", stderr), stderr


def test_bind_errors_same_with_compiled_kernels(tmp_path: Path) -> None:
    """Bind errors do not depend on the backend: the C path reports the same message."""
    case = BAD / "bind_index_out_of_range.cfc"
    assert "--backend" in _args(case)
    model = case.relative_to(ROOT).as_posix()
    args = [a for a in _args(case) if a not in ("--backend", "python")]
    result = run_cfc("run", model, *args)
    expected = case.with_suffix(".expected").read_text().rsplit("exit:", 1)[0]
    # without a C compiler, `auto` adds a one-line note before the error
    stderr = "".join(line for line in result.stderr.splitlines(keepends=True)
                     if not line.startswith("cfc: note: "))
    assert stderr == expected
    assert result.returncode == 2
