"""Start-up: a cache-hit `cfc run` imports only what it uses. SymPy, setuptools, SciPy,
matplotlib, dask and networkx are for compiling, lbfgsb, figures, sweeps and cd; a stdlib
model relaxed by the default solver from a warm cache needs none of them (issue 12, item 5).
The check is on `sys.modules` in a fresh interpreter, not on time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLES

HEAVY = ("sympy", "setuptools", "scipy", "matplotlib", "dask", "networkx", "jinja2")

# main() in a fresh interpreter, then the heavy top-level packages it left in sys.modules
_PROBE = """
import json, sys
from cfc_dsl.cli.main import main
code = main(sys.argv[2:])
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1].split(',')))
print('@@' + json.dumps({'code': code, 'heavy': heavy}))
"""


def _imports(*argv: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _PROBE, ",".join(HEAVY), *argv],
                          capture_output=True, text=True, env=dict(os.environ), check=False)
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("@@")]
    assert line, done.stdout + done.stderr
    return json.loads(line[-1][2:])


@pytest.mark.parametrize("example", ["chain", "sequence_redemption", "seed_baseline"])
def test_cache_hit_run_imports_nothing_heavy(example: str) -> None:
    model = str(EXAMPLES / f"{example}.cfc")
    warm = _imports("compile", model, "--quiet")  # fills this session's cache
    assert warm["code"] == 0
    hit = _imports("run", model, "--max-steps", "20", "--quiet")
    assert hit["code"] == 0
    assert hit["heavy"] == [], f"a cache-hit run imported {hit['heavy']}"


def test_lbfgsb_still_imports_scipy_when_chosen() -> None:
    model = str(EXAMPLES / "chain.cfc")
    assert _imports("compile", model, "--quiet")["code"] == 0
    hit = _imports("run", model, "--solver", "lbfgsb", "--max-steps", "5", "--quiet")
    assert hit["code"] == 0
    assert "scipy" in hit["heavy"]  # the oracle of the probe: it does see a lazy import
