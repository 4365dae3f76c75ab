"""The checked-model cache (cfc_dsl/modelcache.py): what it reads back is the model a fresh
parse and check gives, object sharing included; it is keyed by the text, the name and the
language's own source; a tampered, foreign or unreadable entry is a miss that builds
nothing it was not built to; errors are never cached."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cfc_dsl import frontend, modelcache
from cfc_dsl.diagnostics import CfcError, Source
from conftest import EXAMPLES

MODELS = sorted(EXAMPLES.glob("*.cfc"))


def _sources(obj: object, out: dict[int, Source]) -> None:
    """Every Source object reachable from `obj`, by id."""
    import dataclasses

    if isinstance(obj, Source):
        out[id(obj)] = obj
    elif isinstance(obj, tuple):
        for item in obj:
            _sources(item, out)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            _sources(getattr(obj, f.name), out)


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_round_trip_is_the_freshly_checked_model(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    fresh = frontend.load_source(text, str(path))
    stored = modelcache.encode(fresh)
    back = modelcache.decode(stored)
    assert back == fresh  # spans are compare=False: the next lines check them too
    assert repr(back) == repr(fresh)  # every span's position
    assert modelcache.encode(back) == stored  # the same graph, node for node
    assert back.kernel_spec() == fresh.kernel_spec()  # hence the same kernel cache key
    # sharing kept: as many distinct Source objects (one text each), not one per span
    fresh_sources, back_sources = {}, {}
    _sources(fresh, fresh_sources)
    _sources(back, back_sources)
    assert len(back_sources) == len(fresh_sources)
    assert sorted((s.name, s.text) for s in back_sources.values()) == sorted(
        (s.name, s.text) for s in fresh_sources.values())


def _copy(tmp_path: Path, name: str = "chain.cfc") -> Path:
    target = tmp_path / name
    target.write_text((EXAMPLES / "chain.cfc").read_text(encoding="utf-8"), encoding="utf-8")
    return target


def test_a_second_load_skips_parse_and_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model_file = _copy(tmp_path)
    first = frontend.load_file(model_file, cached=True)
    path = modelcache.entry_path(frontend.read_input(model_file, "model file", limit=1 << 20,
                                                     hint="").decode(), str(model_file))
    assert path is not None and path.exists()
    assert (path.stat().st_mode & 0o777) == 0o600 and (path.parent.stat().st_mode & 0o777) == 0o700
    json.loads(path.read_text(encoding="utf-8"))  # plain JSON

    def refuse(*_args: object) -> None:
        raise AssertionError("parsed although the checked model is cached")

    monkeypatch.setattr(frontend, "load_source", refuse)
    assert frontend.load_file(model_file, cached=True) == first
    # an edit (or another name: spans carry it) is another key, so it is checked again
    model_file.write_text(model_file.read_text() + "\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="parsed although"):
        frontend.load_file(model_file, cached=True)


def test_the_key_covers_text_name_and_language(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    text = (EXAMPLES / "chain.cfc").read_text(encoding="utf-8")
    base = modelcache.entry_path(text, "a.cfc")
    assert base == modelcache.entry_path(text, "a.cfc")
    assert base != modelcache.entry_path(text + " ", "a.cfc")
    assert base != modelcache.entry_path(text, "b.cfc")
    monkeypatch.setattr(modelcache, "language_digest", lambda: "another language")
    assert modelcache.entry_path(text, "a.cfc") != base
    # the language digest reads the package's own files: an edit of any of them changes it
    package = Path(modelcache.__file__).parent
    copy = tmp_path / "pkg"
    copy.mkdir()
    for name in ("grammar.lark", "stdlib.cfc", "checker.py", "parser.py", "syntax.py"):
        (copy / name).write_bytes((package / name).read_bytes())
    before = modelcache.folder_digest(copy)
    (copy / "notes.md").write_text("not source", encoding="utf-8")
    assert modelcache.folder_digest(copy) == before
    for name in ("grammar.lark", "stdlib.cfc", "checker.py"):
        original = (copy / name).read_bytes()
        (copy / name).write_bytes(original + b"\n")
        assert modelcache.folder_digest(copy) != before, name
        (copy / name).write_bytes(original)
    assert modelcache.folder_digest(copy) == before


@pytest.mark.parametrize("entry", [
    '{"format": 1, "nodes": [["builtins.eval", {"source": "1"}]], "root": 0}',
    '{"format": 1, "nodes": [["os.system", "ls"]], "root": 0}',
    '{"format": 1, "nodes": [["cfc_dsl.diagnostics.Source", {"name": "x", "text": "y"}]], "root": 0}',
    '{"format": 1, "nodes": [["cfc_dsl.syntax.Name", {"name": {"r": 5}}]], "root": 0}',
    '{"format": 99, "nodes": [], "root": 0}',
    '{"format": 1, "nodes": [], "root": 0}',  # IndexError inside decode
    '{"format": 1, "nodes": [[1, 2]], "root": 0}',  # a node that is not [name, fields]
    '{"format": 1, "nodes": [["cfc_dsl.syntax.Name", [1, 2]]], "root": 0}',  # AttributeError
    '{"format": 1, "nodes": [["cfc_dsl.syntax.Name", {"name": "x"}]], "root": "0"}',
    "\x80not json",
    "",
])
def test_a_tampered_entry_is_a_miss(tmp_path: Path, entry: str) -> None:
    model_file = _copy(tmp_path)
    text = model_file.read_text(encoding="utf-8")
    path = modelcache.entry_path(text, str(model_file))
    assert path is not None
    path.write_text(entry, encoding="utf-8")
    os.chmod(path, 0o600)
    assert modelcache.load(path) is None
    model = frontend.load_file(model_file, cached=True)  # checked again, and stored again
    assert model == frontend.load_source(text, str(model_file))
    assert modelcache.load(path) == model


def test_a_foreign_writable_folder_or_file_is_not_used(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFC_CACHE_DIR", str(tmp_path / "cache"))
    text = (EXAMPLES / "chain.cfc").read_text(encoding="utf-8")
    path = modelcache.entry_path(text, "m.cfc")
    assert path is not None
    modelcache.store(path, frontend.load_source(text, "m.cfc"))
    assert modelcache.load(path) is not None
    os.chmod(path, 0o666)  # writable by others: someone could have planted it
    assert modelcache.load(path) is None
    os.chmod(path.parent, 0o777)
    assert modelcache.entry_path(text, "m.cfc") is None


def test_errors_are_not_cached(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cfc"
    bad.write_text("model m\nvar x in [0, 1\n", encoding="utf-8")
    for _ in range(2):
        with pytest.raises(CfcError) as info:
            frontend.load_file(bad, cached=True)
        assert info.value.span is not None and info.value.span.line == 2
    folder = modelcache.cache_root() / "models"
    text = bad.read_text(encoding="utf-8")
    assert modelcache.entry_path(text, str(bad)) is not None
    assert not modelcache.entry_path(text, str(bad)).exists()  # type: ignore[union-attr]
    assert folder.is_dir()


def test_cache_clear_removes_the_stored_models(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from cfc_dsl.cli.main import main

    monkeypatch.setenv("CFC_CACHE_DIR", str(tmp_path / "cache"))
    model_file = _copy(tmp_path)
    frontend.load_file(model_file, cached=True)
    folder = modelcache.cache_root() / "models"
    (folder / "mine.txt").write_text("not the cache's", encoding="utf-8")
    [entry] = folder.glob("*.json")
    assert main(["cache", "clear"]) == 0
    assert not entry.exists() and (folder / "mine.txt").exists()
    assert modelcache.clear() == 0


def test_cfc_run_from_the_cache_gives_the_same_result(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from cfc_dsl.cli.main import main

    model_file = str(_copy(tmp_path))
    runs = []
    for attempt in range(2):
        if attempt:  # the second run must come from the cache
            monkeypatch.setattr(frontend, "load_source", lambda *_a: pytest.fail("parsed"))
        assert main(["run", model_file, "--json", "--max-steps", "50"]) == 0
        payload = json.loads(capsys.readouterr().out)
        payload.pop("compile")  # the kernel cache's hit/miss and seconds
        runs.append(payload)
    assert runs[0] == runs[1]


def test_the_cache_keeps_the_most_recently_used_entries(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each edit of a model adds an entry; a store prunes all but MAX_ENTRIES, dropping the
    least recently used (a load counts as a use), and never a file the cache did not name."""
    monkeypatch.setenv("CFC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(modelcache, "MAX_ENTRIES", 3)
    model_file = _copy(tmp_path)
    base = model_file.read_text(encoding="utf-8")
    folder = modelcache.cache_root() / "models"
    paths = []
    for k in range(3):
        model_file.write_text(base + f"\n# edit {k}\n", encoding="utf-8")
        frontend.load_file(model_file, cached=True)
        paths.append(modelcache.entry_path(model_file.read_text(encoding="utf-8"),
                                           str(model_file)))
    for k, path in enumerate(paths):  # distinct, ordered use times
        os.utime(path, ns=(10**18 + k, 10**18 + k))
    (folder / "mine.txt").write_text("not the cache's", encoding="utf-8")
    assert modelcache.load(paths[0]) is not None  # edit 0 is now the most recently used
    model_file.write_text(base + "\n# edit 3\n", encoding="utf-8")
    frontend.load_file(model_file, cached=True)
    left = sorted(folder.glob("*.json"))
    assert len(left) == 3
    assert not paths[1].exists(), "the least recently used entry should have gone"
    assert paths[0].exists() and paths[2].exists() and (folder / "mine.txt").exists()
