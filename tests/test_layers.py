"""The import direction: language -> codegen -> runtime -> facade and CLI, with no cycles.

Reads every import statement of the package's source (module level, inside functions and
under TYPE_CHECKING alike) with `ast`, maps each file to its installed module name, and
checks that no import points up a layer and that the module graph has no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
# folder in the repository -> the package it installs as (pyproject's package-dir)
FOLDERS = {"cfc_dsl": "cfc_dsl", "codegen": "cfc_dsl.codegen", "runtime": "cfc_dsl.runtime",
           "templates": "cfc_dsl.templates"}
LANGUAGE, CODEGEN, RUNTIME, TOP = range(4)
LAYER_NAMES = ("language", "codegen", "runtime", "facade/CLI")
MAX_LINES = 400


def modules() -> dict[str, Path]:
    out = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


def layer(module: str) -> int:
    if module in ("cfc_dsl", "cfc_dsl.api") or module.startswith("cfc_dsl.cli"):
        return TOP
    if module.startswith("cfc_dsl.runtime"):
        return RUNTIME
    if module.startswith(("cfc_dsl.codegen", "cfc_dsl.templates")):
        return CODEGEN
    return LANGUAGE


def imports(module: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported cfc module, line) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append((sub if sub in known else base, node.lineno))
    return out


def import_graph() -> nx.DiGraph:
    mods = modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(mods)
    for module, path in mods.items():
        for target, line in imports(module, path, set(mods)):
            if target.split(".")[0] in ("cfc_dsl", "codegen", "runtime", "templates"):
                graph.add_edge(module, target, line=line)
    return graph


def test_every_import_names_the_installed_package() -> None:
    """Nothing imports a top-level `codegen`, `runtime` or `templates`: those names belong
    to whatever else is installed, or to the user's working directory."""
    graph = import_graph()
    foreign = [f"{m}:{d['line']} imports {t}" for m, t, d in graph.edges(data=True)
               if not t.startswith("cfc_dsl")]
    assert not foreign, "\n".join(foreign)


def test_no_import_points_up() -> None:
    graph = import_graph()
    upward = [f"{m}:{d['line']} ({LAYER_NAMES[layer(m)]}) imports {t} ({LAYER_NAMES[layer(t)]})"
              for m, t, d in graph.edges(data=True)
              if t.startswith("cfc_dsl") and layer(t) > layer(m)]
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    cycles += [[m] for m in graph if graph.has_edge(m, m)]
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_all_modules_in_the_graph_are_real() -> None:
    """Every cfc module imported anywhere exists (a typo in a lazy import fails here, not
    in front of a user)."""
    graph = import_graph()
    mods = set(modules())
    missing = [f"{m}:{d['line']} imports {t}" for m, t, d in graph.edges(data=True)
               if t.startswith("cfc_dsl") and t not in mods]
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("module", sorted(modules()))
def test_module_size(module: str) -> None:
    lines = modules()[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{module} has {lines} lines; split it along its seams"


def test_layers_are_what_the_folders_say() -> None:
    assert layer("cfc_dsl.parser") == LANGUAGE
    assert layer("cfc_dsl.codegen.ir") == CODEGEN
    assert layer("cfc_dsl.runtime.solvers.base") == RUNTIME
    assert layer("cfc_dsl.cli.main") == TOP and layer("cfc_dsl.api") == TOP
