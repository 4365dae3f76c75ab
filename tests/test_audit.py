"""`cfc check`: the audited gradient check, its certificate and --verify (issue #3)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import mpmath
import numpy as np
import pytest

from cfc_dsl.cli.main import main
from conftest import EXAMPLES, run_cfc

BASELINE = EXAMPLES / "seed_baseline.cfc"

KINKS = """\
model audit_kinks
var x[4] in [-1, 1] = 0
energy clip(x, y; c = 0.3) = (max(x, c) - min(y, 0.5))^2
factor margin[i in 0..3] = margin_hinge(x[i], x[i+1]; w = 1.5, m = 0.25)
factor touch             = margin_hinge(x[0], x[3])
factor redeem[i in 0..3] = asym_hinge(x[i], x[i+1]; w = 2.0, beta = 0.9)
factor clip[i in 0..3]   = clip(x[i], x[i+1]; c = 0.2 * i)
"""


def _check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["check", *args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def certified(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    """The seed's baseline model, certified at the default sample count."""
    folder = tmp_path_factory.mktemp("certified")
    model = folder / "seed_baseline.cfc"
    model.write_text(BASELINE.read_text())
    cert = folder / "cert.json"
    assert main(["check", str(model), "--certificate", str(cert), "--json"]) == 0
    return model, cert, cert.read_bytes()


# ---------------------------------------------------------------- passing, report, certificate
def test_baseline_passes_with_the_default_sample_count(certified: tuple[Path, Path, bytes]) -> None:
    _, cert_path, raw = certified
    cert = json.loads(raw)
    assert cert["audit"]["passed"] is True and cert["audit"]["samples"] == 200
    assert set(cert["families"]) == {"seq_local", "gate_local", "couple", "benefit"}
    for fam in cert["families"].values():
        assert fam["points"]["total"] >= 200
        assert fam["points"]["corner"] >= 2 and fam["points"]["face"] >= 2
        exact = fam["checks"]["exact"]
        assert exact["passed"] and exact["checks"] >= 200 and exact["max_rel_error"] < 1e-14
        for ref in ("complex_step", "finite_difference", "energy"):
            assert fam["checks"][ref]["passed"] and fam["checks"][ref]["checks"] > 0
        assert fam["worst"]["kind"] in ("corner", "face", "interior")


def test_certificate_contents(certified: tuple[Path, Path, bytes]) -> None:
    import hashlib

    import cffi
    import sympy

    model, _, raw = certified
    text = raw.decode()
    assert "Infinity" not in text and "NaN" not in text
    cert = json.loads(text)
    assert cert["model"] == "seed_baseline"
    assert cert["source"] == {"path": str(model),
                              "sha256": hashlib.sha256(model.read_bytes()).hexdigest()}
    build = cert["build"]
    for key in ("c_sha256", "module_sha256", "cache_key"):
        assert re.fullmatch(r"[0-9a-f]{64}", build[key])
    assert build["c_matches_render"] is True
    assert cert["versions"]["sympy"] == sympy.__version__
    assert cert["versions"]["cffi"] == cffi.__version__
    assert cert["toolchain"]["flags"] and cert["toolchain"]["compiler_version"]
    assert cert["audit"]["seed"] == 0 and cert["audit"]["rtol"] == 1e-12
    couple = cert["families"]["couple"]
    assert couple["energy"] == "quadratic"
    lip = couple["lipschitz"]
    if lip["status"] == "ok":  # cfc_dsl.lipschitz is present
        assert lip["lipschitz"] is True and lip["formula"]
        assert lip["value"] == pytest.approx(2.8, rel=1e-9)  # |2w| * ||[[1,1],[1,1]]|| = 2.8
    # sorted keys, floats as repr, no timestamp: the file is its own canonical form
    assert text == json.dumps(cert, sort_keys=True, indent=2) + "\n"


def test_human_report_names_every_family_and_the_tolerance(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _check(capsys, str(BASELINE), "--samples", "20")
    assert rc == 0
    for name in ("seq_local", "gate_local", "couple", "benefit"):
        assert f"family {name} " in out
    assert "exact (mpmath)" in out and "finite difference" in out and "complex step" in out
    assert "1e-12" in out and "worst" in out and "all 4 families pass" in out
    assert "L = 7.5 at gate (gate_local 4.7, couple 2.8); certified step 1/L = 0.133" in out


def test_certificate_records_the_global_bound_and_step(certified: tuple[Path, Path, bytes]) -> None:
    glob = json.loads(certified[2])["global_lipschitz"]
    assert glob["variable"] == "gate"
    assert glob["L"] == pytest.approx(7.5, rel=1e-9) and glob["L"] >= 7.5
    assert glob["certified_step"] == pytest.approx(1 / glob["L"])
    shares = {name: f["share"] for name, f in glob["families"].items()}
    assert shares["gate_local"] == pytest.approx(4.7) and shares["couple"] == pytest.approx(2.8)
    assert sum(v for v in shares.values() if v) == pytest.approx(glob["L"])


# ---------------------------------------------------------------- determinism and --verify
def test_certificate_is_byte_for_byte_deterministic(certified: tuple[Path, Path, bytes],
                                                    tmp_path: Path) -> None:
    model, _, raw = certified
    again = tmp_path / "again.json"
    proc = run_cfc("check", str(model), "--certificate", str(again))  # another process
    assert proc.returncode == 0, proc.stderr
    assert again.read_bytes() == raw
    third = tmp_path / "third.json"
    assert main(["check", str(model), "--certificate", str(third)]) == 0
    assert third.read_bytes() == raw


def test_seed_changes_the_points(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["check", str(BASELINE), "--samples", "10", "--certificate", str(a)]) == 0
    assert main(["check", str(BASELINE), "--samples", "10", "--seed", "7",
                 "--certificate", str(b)]) == 0
    ca, cb = json.loads(a.read_text()), json.loads(b.read_text())
    assert cb["audit"]["seed"] == 7
    assert ca["families"]["couple"]["checks"]["exact"]["worst"] != \
        cb["families"]["couple"]["checks"]["exact"]["worst"]


def test_verify_round_trips(certified: tuple[Path, Path, bytes],
                            capsys: pytest.CaptureFixture[str]) -> None:
    _, cert, _ = certified
    rc, out, err = _check(capsys, "--verify", str(cert))
    assert rc == 0, out + err
    assert "verified" in out and "reproduced every recorded value" in out
    rc, out, _ = _check(capsys, "--verify", str(cert), "--json")
    assert rc == 0 and json.loads(out)["verified"] is True


def test_verify_fails_after_editing_the_source(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "baseline.cfc"
    model.write_text(BASELINE.read_text())
    cert = tmp_path / "cert.json"
    assert main(["check", str(model), "--samples", "12", "--certificate", str(cert)]) == 0
    capsys.readouterr()
    model.write_text(model.read_text().replace("delta = 0.08", "delta = 0.09"))
    rc, out, err = _check(capsys, "--verify", str(cert))
    assert rc == 1
    assert "does NOT match" in out and "source.sha256" in out
    assert "the .cfc source changed" in out and "verification failed" in err
    # the audit re-ran on the new source: its recorded parameter values differ too
    assert "families.benefit" in out
    model.write_text(model.read_text() + "factor broken = nosuch(seq)\n")
    rc, out, err = _check(capsys, "--verify", str(cert))
    assert rc == 1 and "source.sha256" in out and "no longer loads" in out


def test_verify_fails_on_an_edited_certificate(certified: tuple[Path, Path, bytes], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _, cert, raw = certified
    data = json.loads(raw)
    data["families"]["couple"]["checks"]["exact"]["max_abs_error"] = 0.5
    data["build"]["module_sha256"] = "0" * 64
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(data, sort_keys=True, indent=2) + "\n")
    rc, out, _ = _check(capsys, "--verify", str(forged))
    assert rc == 1
    assert "build.module_sha256" in out and "families.couple.checks.exact.max_abs_error" in out
    assert out.index("build.module_sha256") < out.index("families.couple")  # identity first


# ---------------------------------------------------------------- it catches a wrong kernel
def test_a_wrong_kernel_fails_naming_the_family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Corrupt one gradient coefficient of `quadratic` in the rendered C, build it through the
    normal path into a fresh cache, and `cfc check` must fail naming the family that uses it."""
    import cfc_dsl.codegen.render as render

    original = render.render_model

    def corrupt(src: str) -> str:
        if "double cfc_egm_quadratic(" not in src:
            return src
        start, end = src.index("double cfc_egm_quadratic("), src.index("double cfc_eg_quadratic(")
        body, count = re.subn(r"(&G\[s_y\[k\]\] : &nowhere\) \+= weight \* )",
                              r"\g<1>1.0000001 * ", src[start:end], count=1)
        assert count == 1, "the generated gradient line changed shape; update this test"
        return src[:start] + body + src[end:]

    def corrupted(model, target=render.Target.C):  # type: ignore[no-untyped-def]
        out = original(model, target)
        # the one-file source and, where the build compiles units, the unit that holds it
        units = tuple(dataclasses.replace(u, source=corrupt(u.source)) for u in out.units)
        assert "1.0000001" in corrupt(out.source)
        return dataclasses.replace(out, source=corrupt(out.source), units=units)

    monkeypatch.setattr(render, "render_model", corrupted)
    monkeypatch.setenv("CFC_CACHE_DIR", str(tmp_path / "cache"))
    # a model name of its own, so the corrupted module can never be loaded for another test
    model = tmp_path / "wrong.cfc"
    model.write_text(BASELINE.read_text().replace("model seed_baseline", "model audit_wrong_kernel"))
    rc, out, err = _check(capsys, str(model), "--samples", "30", "--json")
    assert rc == 1
    report = json.loads(out)
    assert report["audit"]["passed"] is False and report["audit"]["failed"] == ["couple"]
    couple = report["families"]["couple"]
    assert not couple["checks"]["exact"]["passed"]
    assert couple["checks"]["exact"]["worst"]["slot"] == "y"
    assert couple["checks"]["exact"]["max_rel_error"] > 1e-8
    for name in ("seq_local", "gate_local", "benefit"):
        assert report["families"][name]["passed"]
    assert "FAIL family 'couple' (energy quadratic)" in err and "dE/dy" in err
    assert "point" in err and "seq" in err  # names the point and its variables

    rc, out, err = _check(capsys, str(model), "--samples", "30")
    assert rc == 1 and "FAIL" in out and "1 of 4 families FAIL: couple" in out


# ---------------------------------------------------------------- kinks
def test_kink_points_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "kinks.cfc"
    model.write_text(KINKS)
    rc, out, err = _check(capsys, str(model), "--samples", "60", "--json")
    assert rc == 0, err
    report = json.loads(out)
    for name in ("margin", "touch", "redeem", "clip"):
        fam = report["families"][name]
        assert fam["points"]["kink"] >= 2 and fam["points"]["kink_side"] >= 4, name
        assert fam["passed"], name
        # on a kink the complex step and the finite difference stand aside
        assert fam["checks"]["complex_step"]["skipped"] > 0
        assert fam["checks"]["finite_difference"]["skipped"] > 0


def test_kink_points_lie_on_the_kinks() -> None:
    import cfc_dsl as cfc
    from cfc_dsl.derive import derive_model
    from cfc_dsl.runtime.audit.gradients import AuditOptions, Oracle, PointSampler, kink_arguments
    from cfc_dsl.runtime.bind.tables import bind

    model = cfc.loads(KINKS, "kinks.cfc")
    bound = bind(model)
    energies = {d.name: d for d in derive_model(model)}
    margin = energies["margin_hinge"]
    assert len(kink_arguments(margin)) == 2  # x - y (abs) and |x - y| - m (relu)
    table = next(t for t in bound.families if t.name == "margin")
    oracle = Oracle(margin)
    sampler = PointSampler(oracle, table, bound, AuditOptions(samples=60, seed=3))
    points = sampler.points()
    kinks = [p for p in points if p.kind == "kink"]
    sides = [p for p in points if p.kind == "kink_side"]
    assert kinks and len(sides) >= 2 * len(kinks)
    with mpmath.workdps(60):
        for p in kinks:
            args = [mpmath.mpf(float(v)) for v in p.x] + \
                [mpmath.mpf(float(v[p.instance])) for v in table.params]
            nearest = min(abs(u(*args)) for u in oracle.kink_mp)
            assert nearest <= 4 * np.finfo(float).eps  # the nearest float to the kink
        for p in points:
            assert np.all(p.x >= sampler.lo[p.instance]) and np.all(p.x <= sampler.hi[p.instance])


# ---------------------------------------------------------------- exit codes
def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _check(capsys, str(tmp_path / "missing.cfc"))
    assert rc == 2 and "does not exist" in err
    rc, _, err = _check(capsys, str(BASELINE), "--samples", "0")
    assert rc == 2 and "--samples" in err
    rc, _, err = _check(capsys)
    assert rc == 2 and "needs a model" in err
    rc, _, err = _check(capsys, "--verify", str(tmp_path / "nope.json"))
    assert rc == 2 and "does not exist" in err
    (tmp_path / "other.json").write_text('{"hello": 1}')
    rc, _, err = _check(capsys, "--verify", str(tmp_path / "other.json"))
    assert rc == 2 and "not a cfc audit certificate" in err
    rc, _, err = _check(capsys, str(BASELINE), "--set", "nope=1", "--samples", "5")
    assert rc == 2 and "nope" in err


def test_verify_rejects_new_settings(certified: tuple[Path, Path, bytes],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    _, cert, _ = certified
    rc, _, err = _check(capsys, "--verify", str(cert), "--seed", "3")
    assert rc == 2 and "--seed cannot be combined with --verify" in err


def test_set_values_are_recorded_and_replayed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chain = EXAMPLES / "chain.cfc"
    cert = tmp_path / "chain.json"
    rc, _, _ = _check(capsys, str(chain), "--set", "N=5", "--set", "a=-0.25", "--samples", "10",
                      "--certificate", str(cert))
    assert rc == 0
    data = json.loads(cert.read_text())
    assert data["bind"]["set"] == {"N": 5.0, "a": -0.25}
    assert data["families"]["local"]["instances"] == 5
    assert data["families"]["local"]["checks"]["exact"]["worst"]["params"]["a"] == -0.25
    rc, out, _ = _check(capsys, "--verify", str(cert))
    assert rc == 0, out
