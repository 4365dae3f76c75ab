"""The shipped compiled templates (codegen/compiled_templates.json, codegen/jinja_env.py).

They must be the current templates' under the Jinja in use, render every example to the
same bytes as templates Jinja compiles now, and give way to compiling wherever they do not
fit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import pytest

from cfc_dsl.codegen import jinja_env, render
from cfc_dsl.frontend import load_file, load_source
from cfc_dsl.model import Target
from conftest import ALL_ENERGIES_MODEL, EXAMPLES

SHIPPED = Path(jinja_env.__file__).with_name(jinja_env.SHIPPED)
REGENERATE = "run `python -m cfc_dsl.codegen.jinja_env` and commit codegen/compiled_templates.json"


def _recorded() -> dict[str, Any]:
    return dict(json.loads(SHIPPED.read_text(encoding="utf-8")))


def _count_compiles(env: jinja2.Environment, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the templates `env` compiles from now on."""
    compiled: list[str] = []
    original = env.compile

    def counted(source: str, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        compiled.append(str(name))
        return original(source, name, *args, **kwargs)

    monkeypatch.setattr(env, "compile", counted)
    return compiled


def _stale() -> set[str]:
    """Templates whose source differs from their shipped entry (an edit not yet written)."""
    entries = jinja_env._shipped_entries()
    return {n for n in jinja_env.template_names()
            if entries.get(n, {}).get("sha1") != jinja_env._checksum(jinja_env._read(n))}


def test_the_shipped_templates_are_current() -> None:
    recorded = _recorded()
    if recorded["jinja2"] != jinja2.__version__:
        pytest.skip(f"shipped for Jinja {recorded['jinja2']}, this is {jinja2.__version__}")
    assert recorded["options"] == jinja_env.OPTIONS
    names = jinja_env.template_names()
    assert sorted(recorded["templates"]) == names, REGENERATE
    for name in names:
        source = jinja_env._read(name)
        assert recorded["templates"][name]["sha1"] == jinja_env._checksum(source), \
            f"{name} changed: {REGENERATE}"


def _models() -> list[tuple[str, Any]]:
    out = [(p.name, load_file(p)) for p in sorted(EXAMPLES.glob("*.cfc"))]
    return [*out, ("all_energies", load_source(ALL_ENERGIES_MODEL, "all_energies.cfc"))]


@pytest.mark.parametrize("target", [Target.C, Target.CUDA])
def test_rendering_through_them_gives_the_same_bytes(target: Target,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    if not jinja_env._shipped_entries():
        pytest.skip("the shipped templates do not fit this Jinja")
    shipped = jinja_env._environment(jinja_env.Shipped(jinja_env._shipped_entries()))
    compiled = _count_compiles(shipped, monkeypatch)
    for name, model in _models():
        monkeypatch.setattr(render, "environment", jinja_env.plain_environment)
        want = render.render_model(model, target)
        monkeypatch.setattr(render, "environment", lambda: shipped)
        got = render.render_model(model, target)
        assert got == want, name
    assert set(compiled) <= _stale()  # only an edited template is compiled: the rest ran shipped
    assert len(compiled) == len(set(compiled))


def test_a_changed_template_is_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = jinja_env._shipped_entries()
    name = next(iter(entries))
    env = jinja_env._environment(jinja_env.Shipped(entries))
    changed = jinja_env._read(name) + "\n{# edited #}\n"
    monkeypatch.setattr(env, "loader", jinja2.FunctionLoader(
        lambda n: changed if n == name else jinja_env._read(n)))
    compiled = _count_compiles(env, monkeypatch)
    env.get_template(name)
    assert compiled == [name]


@pytest.mark.parametrize("content", [None, "{not json", '{"jinja2": "0.0"}'])
def test_a_missing_damaged_or_foreign_file_means_compiling(
        content: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if content is not None:
        (tmp_path / jinja_env.SHIPPED).write_text(content)
    real = jinja_env.resources.files
    monkeypatch.setattr(jinja_env.resources, "files",
                        lambda pkg: tmp_path if pkg == "cfc_dsl.codegen" else real(pkg))
    assert jinja_env._shipped_entries() == {}
    other = dict(_recorded(), options={**jinja_env.OPTIONS, "trim_blocks": False})
    (tmp_path / jinja_env.SHIPPED).write_text(json.dumps(other))
    assert jinja_env._shipped_entries() == {}


def test_the_writer_round_trips(tmp_path: Path) -> None:
    written = json.loads(jinja_env.write(tmp_path / "t.json").read_text())
    assert sorted(written["templates"]) == jinja_env.template_names()
    assert written["jinja2"] == jinja2.__version__
