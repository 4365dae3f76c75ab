"""A non-editable install, used from another directory, finds its templates and stdlib."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT


@pytest.mark.slow
def test_non_editable_install_runs_from_elsewhere(tmp_path: Path) -> None:
    target = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(ROOT)],
        capture_output=True, text=True, timeout=300)
    if build.returncode != 0:
        pytest.fail(f"pip install failed:\n{build.stdout}\n{build.stderr}")
    assert (target / "codegen" / "templates" / "kernels.c.j2").is_file()
    assert (target / "cfc_dsl" / "stdlib.cfc").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    model = elsewhere / "m.cfc"
    model.write_text((EXAMPLES / "seed_baseline.cfc").read_text())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    env["CFC_CACHE_DIR"] = str(tmp_path / "cache")
    # the target goes first on sys.path, ahead of the checkout's editable install
    code = (f"import sys; sys.path.insert(0, {str(target)!r}); import cfc_dsl, codegen; "
            f"assert cfc_dsl.__file__.startswith({str(target)!r}), cfc_dsl.__file__; "
            "from cfc_dsl.cli.main import main; sys.exit(main(['run', 'm.cfc', '--json']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=elsewhere, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["compile"]["cache"] == "miss"
    assert abs(result["energy"] - -0.0025076) < 1e-6
