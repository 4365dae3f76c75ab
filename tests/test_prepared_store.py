"""The prepared-energy store (codegen/prepared_store.py): complete keys, safe values, no SymPy.

- The key is complete: over every job of the examples and the stdlib, equal keys are equal
  jobs and give equal views, and changing any compared leaf of a job (a name, a slot, a
  default, a literal, a flag) changes its key, while a span does not.
- Values decode only to the view classes; anything malformed is a miss, never an error.
- The package's stdlib file is current (else: regenerate it with the command it names).
- A cold compile of examples/sequence_redemption.cfc (stdlib energies only) imports no
  SymPy, and a user energy prepared once is found by the next process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cfc_dsl as cfc
from cfc_dsl.checker import stdlib_energies
from cfc_dsl.codegen import prepared_codec, prepared_store
from cfc_dsl.codegen.prepare import prepare
from cfc_dsl.codegen.stdlib_prepared import stdlib_prepared
from cfc_dsl.diagnostics import Span
from cfc_dsl.jobs import EnergyJob, energy_jobs, jobs_of

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.cfc"))
OWN_ENERGY = ("model own\nvar u[3] in [0, 1] = 0.5\nenergy wobble(x, y; a = 2.5) = a*(x - y)^2 "
              "+ cos(x)\nfactor f[i in 0..2] = wobble(u[i], u[i + 1])\n")


def corpus() -> list[EnergyJob]:
    energies = stdlib_energies()
    jobs = list(jobs_of(energies, [e.name for e in energies]))
    for path in EXAMPLES:
        jobs += energy_jobs(cfc.load(str(path)))
    jobs += energy_jobs(cfc.loads(OWN_ENERGY, "own.cfc"))
    return jobs


def test_equal_keys_are_equal_jobs_with_equal_views() -> None:
    by_key: dict[str, list[EnergyJob]] = {}
    for job in corpus():
        key = prepared_store.job_key(job)
        assert key is not None
        by_key.setdefault(key, []).append(job)
    assert len(by_key) > 10
    for jobs in by_key.values():
        assert all(job == jobs[0] for job in jobs)  # spans aside: == ignores them too
        views = {prepared_codec.encode(prepare(job))["kernel"]["f"]["formula"] for job in jobs}
        assert len(views) == 1
    # distinct jobs never share a key (the converse)
    distinct = list(dict.fromkeys(corpus()))
    assert len({prepared_store.job_key(j) for j in distinct}) == len(distinct)


def _mutations(obj: Any) -> Iterator[Any]:
    """`obj` with one compared leaf changed, for every such leaf (recursively)."""
    if isinstance(obj, bool):
        yield not obj
    elif isinstance(obj, (int, float)):
        yield obj + 1
    elif isinstance(obj, str):
        yield obj + "_"
    elif isinstance(obj, tuple):
        for i, item in enumerate(obj):
            for changed in _mutations(item):
                yield obj[:i] + (changed,) + obj[i + 1:]
        if obj:
            yield obj[:-1]
    elif dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            if f.compare:
                for changed in _mutations(getattr(obj, f.name)):
                    yield dataclasses.replace(obj, **{f.name: changed})


def test_changing_any_part_of_a_job_changes_its_key() -> None:
    job = energy_jobs(cfc.loads(OWN_ENERGY, "own.cfc"))[0]
    calls = cfc.loads("model calls\nvar u[3] in [0, 1] = 0.5\nenergy inner(x; c = 1) = "
                      "c*x^2 + 1\nenergy outer(x, y; w = 3) = w*inner(x - y)\n"
                      "factor f[i in 0..2] = outer(u[i], u[i + 1])\n", "calls.cfc")
    [called] = energy_jobs(calls)
    assert called[1]
    for base in (job, called):
        key = prepared_store.job_key(base)
        count = 0
        for changed in _mutations(base):
            if changed == base:  # e.g. 2.0 -> 3.0 where a flag says it is an integer
                continue
            count += 1
            assert prepared_store.job_key(changed) != key, changed
        assert count > 20
    moved = dataclasses.replace(job[0], span=Span("elsewhere.cfc", 9, 9, 9, 9))
    assert prepared_store.job_key((moved, job[1])) == prepared_store.job_key(job)


def test_values_round_trip_and_the_shipped_file_is_current() -> None:
    fresh = stdlib_prepared()
    assert len(fresh) == len(stdlib_energies())
    for value in fresh.values():
        assert prepared_codec.decode(json.loads(json.dumps(prepared_codec.encode(value)))) == value
    text = prepared_store.SHIPPED.read_text(encoding="utf-8")
    assert text == prepared_store.shipped_text(fresh), (
        f"{prepared_store.SHIPPED.name} is stale (the language or codegen sources changed): "
        f"regenerate it with `{prepared_store.REGENERATE}`")
    assert prepared_store.shipped_entries()  # and it is the one a lookup uses


@pytest.mark.parametrize("damage", [
    lambda d: d["kernel"].update(c="Prepared"),  # not a view class
    lambda d: d["kernel"].update(c="os.system"),
    lambda d: d["kernel"]["f"].update(energy=3),  # a str field holding an int
    lambda d: d["kernel"]["f"].update(extra="x"),
    lambda d: d["kernel"]["f"].pop("hv"),
    lambda d: d["bound"]["f"].update(size=True),  # a bool is no int
    lambda d: d["bound"]["f"].update(entries=["h[0]"]),  # a list is no tuple
    lambda d: d["summary"].update(method=[["interval"], []]),
    lambda d: d.update(kernel=d["bound"]),
])
def test_a_malformed_value_is_refused(damage: Any) -> None:
    value = next(iter(stdlib_prepared().values()))
    data = json.loads(json.dumps(prepared_codec.encode(value)))
    damage(data)
    with pytest.raises((ValueError, TypeError, KeyError)):
        prepared_codec.decode(data)


def test_damaged_or_stale_entries_are_misses(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFC_CACHE_DIR", str(tmp_path))
    [job] = energy_jobs(cfc.loads(OWN_ENERGY, "own.cfc"))
    assert prepared_store.lookup([job]) == {}
    prepared_store.keep({job: prepare(job)})
    assert prepared_store.lookup([job]) == {job: prepare(job)}
    [entry] = (tmp_path / "prepared").iterdir()
    entry.write_text(entry.read_text()[:-10])  # truncated
    assert prepared_store.lookup([job]) == {}
    entry.write_text(json.dumps({"kernel": {"c": "_Line", "f": {"name": "t", "code": "0"}},
                                 "bound": 1, "summary": {}}))
    assert prepared_store.lookup([job]) == {}
    # a shipped file of another generator is not used
    stale = tmp_path / "stale.json"
    data = json.loads(prepared_store.SHIPPED.read_text(encoding="utf-8"))
    stale.write_text(json.dumps({**data, "digest": "0" * 64}))
    monkeypatch.setattr(prepared_store, "SHIPPED", stale)
    prepared_store._shipped.cache_clear()
    try:
        std = jobs_of(stdlib_energies(), ["quadratic"])
        assert prepared_store.lookup(std) == {}
    finally:
        prepared_store._shipped.cache_clear()


_COMPILE = """
import sys
from cfc_dsl.cli.main import main
try:
    main(["compile", sys.argv[1]])
except SystemExit as exc:
    assert not exc.code, exc.code
print("sympy" in sys.modules)
"""


def _compile_imports_sympy(path: Path, cache: Path) -> bool:
    env = {**os.environ, "CFC_CACHE_DIR": str(cache)}
    out = subprocess.run([sys.executable, "-c", _COMPILE, str(path)], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1] == "True"


def test_a_cold_compile_of_stdlib_energies_imports_no_sympy(tmp_path: Path) -> None:
    model = ROOT / "examples" / "sequence_redemption.cfc"
    assert all(e.builtin for e in cfc.load(str(model)).used_energies)
    assert not _compile_imports_sympy(model, tmp_path / "cache")


def test_an_energy_prepared_once_is_found_by_the_next_process(tmp_path: Path) -> None:
    source = tmp_path / "own.cfc"
    source.write_text(OWN_ENERGY)
    assert _compile_imports_sympy(source, tmp_path / "one")  # prepared, and stored
    # all but the store goes (the kernels' entry too), so the next compile renders again
    assert any((tmp_path / "one" / "prepared").iterdir())
    for path in (tmp_path / "one").iterdir():
        if path.name != "prepared":
            subprocess.run(["rm", "-rf", str(path)], check=True)
    assert not _compile_imports_sympy(source, tmp_path / "one")


def test_cache_clear_removes_the_prepared_energies(tmp_path: Path) -> None:
    """`cfc cache clear` resets the generated code too: the stored energies hold its C text."""
    source = tmp_path / "own.cfc"
    source.write_text(OWN_ENERGY)
    cache = tmp_path / "cache"
    assert _compile_imports_sympy(source, cache)
    stored = cache / "prepared"
    assert any(stored.iterdir())
    (stored / "notes.txt").write_text("not the store's")  # what the store did not name stays
    env = {**os.environ, "CFC_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-m", "cfc_dsl.cli.main", "cache", "clear"], env=env,
                          cwd=ROOT, capture_output=True, text=True, check=True)
    assert "prepared energ" in done.stdout, done.stdout
    assert sorted(p.name for p in stored.iterdir()) == ["notes.txt"]
    assert _compile_imports_sympy(source, cache)  # prepared again
