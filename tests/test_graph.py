"""The graph stage: the NetworkX graph, the figure layout, golden DOT, real SVG/PDF/PNG
rendering through graphviz, standalone TikZ, solution overlays and the `cfc graph` CLI."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import cfc_dsl as cfc
import cfc_dsl.runtime.figures.dot as figure_dot
from cfc_dsl.cli.main import main
from cfc_dsl.diagnostics import CfcError
from cfc_dsl.notation import latex_expr, unicode_element, unicode_expr
from cfc_dsl.runtime.bind.tables import DataInput, Setting, bind
from cfc_dsl.runtime.figures.dot import dot_source, render
from cfc_dsl.runtime.figures.output import write_figure
from cfc_dsl.runtime.figures.palette import PALETTE, viridis
from cfc_dsl.runtime.figures.scene import (
    Scene,
    expanded_scene,
    families_scene,
    load_solution,
)
from cfc_dsl.runtime.figures.tikz import tikz_source
from cfc_dsl.runtime.graph.bipartite import to_networkx
from cfc_dsl.version import __version__
from conftest import EXAMPLES, GOLDEN, check_golden, run_cfc

EXAMPLE_NAMES = ["chain", "grid_percolation", "seed_baseline", "seed_dense",
                 "sequence_redemption"]
SHORTCUTS = EXAMPLES / "grid_shortcuts.npy"
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="graphviz's dot is not installed "
                               "(apt-get install graphviz)")
SVG = "{http://www.w3.org/2000/svg}"


def _bound(name: str, *settings: Setting):  # type: ignore[no-untyped-def]
    model = cfc.load(str(EXAMPLES / f"{name}.cfc"))
    data = (DataInput("shortcuts", SHORTCUTS),) if model.data else ()
    return model, bind(model, settings, data)


def _scene(name: str, view: str) -> Scene:
    model, bound = _bound(name)
    return expanded_scene(bound) if view == "expanded" else families_scene(model, bound)


def _data_args(name: str) -> list[str]:
    return ["--data", f"shortcuts={SHORTCUTS}"] if name == "grid_percolation" else []


def _cfc(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The real command line, in this process (no interpreter start-up per call)."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- NetworkX
def test_networkx_graph_is_bipartite_with_one_edge_per_slot() -> None:
    model = cfc.load(str(EXAMPLES / "chain.cfc"))
    problem = model.compile(backend="python").bind(sizes={"N": 5})
    graph = problem.to_networkx()
    assert isinstance(graph, nx.MultiGraph) and nx.is_bipartite(graph)
    assert graph.number_of_nodes() == 5 + 5 + 4 and graph.number_of_edges() == 5 + 2 * 4
    eta = graph.nodes["eta[3]"]
    assert eta["kind"] == "variable" and eta["bipartite"] == 0 and eta["index"] == (3,)
    link = graph.nodes["link(3)"]
    assert (link["family"], link["energy"], link["weight"]) == ("link", "quadratic", 1.0)
    assert link["params"] == {"w": 0.8} and link["loops"] == {"i": 3}
    assert link["bipartite"] == 1 and "(x - y)^2" in link["formula"]
    assert sorted(d["slot"] for _, _, d in graph.edges("link(3)", data=True)) == ["x", "y"]
    assert set(graph.neighbors("link(3)")) == {"eta[3]", "eta[4]"}


def test_networkx_keeps_a_repeated_slot_as_two_edges() -> None:
    model = cfc.loads("var x in [0, 1]\nvar gate in [0, 1]\n"
                      "factor gate = quadratic(x, x)\nfactor g = gate_local(gate)\n")
    graph = to_networkx(bind(model))
    assert graph.number_of_edges("gate()", "x") == 2  # a family may share a variable's name
    assert graph.nodes["gate"]["kind"] == "variable" and graph.nodes["gate()"]["kind"] == "factor"


# ---------------------------------------------------------------- layout
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_expanded_layout_has_no_overlapping_nodes(name: str) -> None:
    scene = _scene(name, "expanded")
    xy = np.array([(n.x, n.y) for n in scene.nodes])
    radius = np.array([n.size / 2 for n in scene.nodes])
    gap = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    need = radius[:, None] + radius[None, :]
    np.fill_diagonal(gap, np.inf)
    bad = np.argwhere(gap < need * 0.98)
    assert not bad.size, [(scene.nodes[i].id, scene.nodes[j].id) for i, j in bad[:5]]


def test_chain_runs_left_to_right_and_grid_sits_on_its_grid() -> None:
    _, bound = _bound("chain", Setting("N", 8))
    nodes = {n.id: n for n in expanded_scene(bound).nodes}
    xs = [nodes[f"eta[{i}]"].x for i in range(8)]
    assert xs == sorted(xs) and len({nodes[f"eta[{i}]"].y for i in range(8)}) == 1
    assert xs[0] < nodes["link(0)"].x < xs[1] and nodes["local(0)"].y > nodes["eta[0]"].y
    nodes = {n.id: n for n in _scene("grid_percolation", "expanded").nodes}
    for i in range(15):
        for j in range(15):
            here, right, down = nodes[f"x[{i}, {j}]"], nodes[f"x[{i}, {j + 1}]"], nodes[f"x[{i + 1}, {j}]"]
            assert right.x > here.x and right.y == here.y
            assert down.y < here.y and down.x == here.x
    ring = {n.id: n for n in _scene("seed_dense", "expanded").nodes}
    centre = np.mean([(ring[f"eta[{i}]"].x, ring[f"eta[{i}]"].y) for i in range(16)], axis=0)
    radii = [np.hypot(ring[f"eta[{i}]"].x - centre[0], ring[f"eta[{i}]"].y - centre[1])
             for i in range(16)]
    assert max(radii) - min(radii) < 0.5  # a wrap-around family draws the array as a circle


def test_data_driven_array_gets_a_seeded_layout(tmp_path: Path) -> None:
    edges = np.array([[0, 5], [5, 9], [9, 2], [2, 7], [7, 0], [1, 3]])
    model = cfc.loads("var x[10] in [0, 1]\ndata e[M, 2] : int\n"
                      "factor net[k in 0..M] = quadratic(x[e[k, 0]], x[e[k, 1]])\n")
    first = dot_source(expanded_scene(bind(model, (), (DataInput("e", edges),))))
    again = dot_source(expanded_scene(bind(model, (), (DataInput("e", edges),))))
    assert first == again and 'pos="' in first


# ---------------------------------------------------------------- golden DOT
@pytest.mark.parametrize("view", ["expanded", "families"])
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_golden_dot(name: str, view: str, update_golden: bool) -> None:
    text = dot_source(_scene(name, view))
    assert text.startswith(f"// generated by cfc {__version__}: {view} view of")
    check_golden(GOLDEN / "dot" / f"{name}.{view}.dot", text, update_golden)


def test_cli_dot_is_byte_identical_across_runs(tmp_path: Path) -> None:
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"run{seed}.dot"
        result = run_cfc("graph", str(EXAMPLES / "sequence_redemption.cfc"), "-o", str(out),
                         env={"PYTHONHASHSEED": seed})
        assert result.returncode == 0, result.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0].decode() == (GOLDEN / "dot" / "sequence_redemption.expanded.dot").read_text()


# ---------------------------------------------------------------- real rendering
@needs_dot
@pytest.mark.parametrize("view", ["expanded", "families"])
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_svg_has_one_node_group_per_graph_node(name: str, view: str) -> None:
    model, bound = _bound(name)
    scene = expanded_scene(bound) if view == "expanded" else families_scene(model, bound)
    root = ET.fromstring(render(scene, "svg"))
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "node"]
    titles = {g.find(f"{SVG}title").text for g in groups}  # type: ignore[union-attr]
    if view == "expanded":
        graph = to_networkx(bound)
        assert len(groups) == graph.number_of_nodes()
        assert titles == set(graph.nodes)
    else:
        assert len(groups) == len(model.variables) + len(model.families)


@needs_dot
def test_pdf_and_png_are_real_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for fmt in ("pdf", "png"):
        out = tmp_path / f"chain.{fmt}"
        code, stdout, err = _cfc(capsys, "graph", str(EXAMPLES / "chain.cfc"), "--set", "N=8",
                                 "-o", str(out))
        assert code == 0, err
        assert f"wrote {out}" in stdout
    assert (tmp_path / "chain.pdf").read_bytes().startswith(b"%PDF")
    png = (tmp_path / "chain.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    # 300 dpi at about one column (3.3 in) wide
    assert 700 <= width <= 1400 and 100 <= height <= 1400, (width, height)


def _has_latex() -> str | None:
    if not shutil.which("pdflatex"):
        return "pdflatex is not installed (apt-get install texlive-latex-base texlive-pictures)"
    found = subprocess.run(["kpsewhich", "standalone.cls"], capture_output=True, text=True)
    if not found.stdout.strip():
        return "standalone.cls is not installed (apt-get install texlive-latex-extra)"
    return None


@pytest.mark.skipif(_has_latex() is not None, reason=str(_has_latex()))
@pytest.mark.parametrize("name,view,args", [
    ("chain", "expanded", ["--set", "N=8"]),
    ("sequence_redemption", "families", []),
    ("seed_baseline", "expanded", ["--solution", "SOLUTION"]),
])
def test_tikz_compiles_with_pdflatex(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     name: str, view: str, args: list[str]) -> None:
    if "SOLUTION" in args:
        args = [a.replace("SOLUTION", str(_solution(tmp_path, name, capsys))) for a in args]
    out = tmp_path / f"{name}.tex"
    code, _, err = _cfc(capsys, "graph", str(EXAMPLES / f"{name}.cfc"), "--view", view, "-o",
                        str(out), *args)
    assert code == 0, err
    assert r"\documentclass[border=3pt]{standalone}" in out.read_text()
    latex = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", out.name],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert latex.returncode == 0, latex.stdout[-2000:]
    assert (tmp_path / f"{name}.pdf").read_bytes().startswith(b"%PDF")


def test_tikz_is_written_with_latex_math() -> None:
    text = tikz_source(_scene("sequence_redemption", "families"))
    assert r"\textbf{redeem}$[i \in 0..N - 4 \mid i \bmod 4 = 0]$" in text
    assert r"$i \mapsto i + 4$" in text and r"\definecolor{fam0}{HTML}{0072B2}" in text
    expanded = tikz_source(_scene("seed_dense", "expanded"))
    assert r"\textsf{gate\_benefit}: $-w\,g\,\Delta$" in expanded


# ---------------------------------------------------------------- without graphviz
def test_without_dot_on_path_svg_fails_and_tex_works(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path)}  # no dot there; cfc runs from sys.executable
    result = run_cfc("graph", str(EXAMPLES / "chain.cfc"), "-o", str(tmp_path / "c.svg"),
                     env=env)
    assert result.returncode == 3, result.stderr
    assert "graphviz's 'dot' program is not on PATH" in result.stderr
    assert "apt-get install graphviz" in result.stderr and "brew install graphviz" in result.stderr
    assert not (tmp_path / "c.svg").exists()
    result = run_cfc("graph", str(EXAMPLES / "chain.cfc"), "-o", str(tmp_path / "c.tex"),
                     env=env)
    assert result.returncode == 0, result.stderr


def test_without_dot_only_svg_pdf_png_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(figure_dot.shutil, "which", lambda name: None)
    for ext in ("svg", "pdf", "png"):
        code, _, err = _cfc(capsys, "graph", str(EXAMPLES / "chain.cfc"), "-o",
                            str(tmp_path / f"c.{ext}"))
        assert code == 3 and "'dot'" in err and "brew install graphviz" in err
        assert not (tmp_path / f"c.{ext}").exists()
    for ext in ("dot", "tex"):
        code, _, err = _cfc(capsys, "graph", str(EXAMPLES / "chain.cfc"), "-o",
                            str(tmp_path / f"c.{ext}"))
        assert code == 0, err


def test_missing_dot_is_an_environment_error_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(figure_dot.shutil, "which", lambda name: None)
    with pytest.raises(CfcError) as err:
        render(_scene("seed_baseline", "expanded"), "svg")
    assert err.value.exit_code == 3 and "'dot'" in err.value.message
    assert cfc.load(str(EXAMPLES / "chain.cfc"))._repr_svg_() is None


# ---------------------------------------------------------------- CLI and overlays
def test_expanded_view_refuses_huge_graphs(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "big.dot"
    chain = str(EXAMPLES / "chain.cfc")
    code, _, err = _cfc(capsys, "graph", chain, "--set", "N=1000", "-o", str(out))
    assert code == 2 and not out.exists()
    assert "2,999 nodes, more than the limit of 2,000" in err
    assert "--view families" in err and "--max-nodes" in err
    code, _, err = _cfc(capsys, "graph", chain, "--set", "N=1000", "-o", str(out),
                        "--max-nodes", "3000")
    assert code == 0 and out.read_text().count("shape=square") == 1999, err
    code, _, err = _cfc(capsys, "graph", chain, "--set", "N=100000", "-o", str(out),
                        "--view", "families")
    assert code == 0 and "100000 factors" in out.read_text(), err


def test_bad_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cfc(capsys, "graph", str(EXAMPLES / "chain.cfc"), "-o",
                        str(tmp_path / "x.gif"))
    assert code == 2 and "unknown figure format '.gif'" in err
    grid = str(EXAMPLES / "grid_percolation.cfc")
    code, _, err = _cfc(capsys, "graph", grid, "-o", str(tmp_path / "x.dot"))
    assert code == 2 and "--data shortcuts=" in err
    code, _, err = _cfc(capsys, "graph", grid, "-o", str(tmp_path / "x.dot"), "--view",
                        "families")
    assert code == 0, err  # plate notation needs no data


def _solution(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> Path:
    """What `cfc run --out` writes."""
    out = tmp_path / "result.json"
    code, _, err = _cfc(capsys, "run", str(EXAMPLES / f"{name}.cfc"), "--backend", "python",
                        "--max-steps", "200", "--out", str(out))
    assert code == 0, err
    return out


def test_solution_overlay_colours_variables(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    solution = _solution(tmp_path, "seed_baseline", capsys)
    model, bound = _bound("seed_baseline")
    values = load_solution(solution, bound)
    scene = expanded_scene(bound, values)
    fills = {n.id: n.fill for n in scene.nodes if n.kind == "variable"}
    low, high = min(map(float, values.values())), max(map(float, values.values()))
    assert fills == {k: viridis((float(v) - low) / (high - low)) for k, v in values.items()}
    assert scene.colourbar is not None and scene.colourbar.colours[0] == viridis(0.0)
    out = tmp_path / "overlay.dot"
    code, _, err = _cfc(capsys, "graph", str(EXAMPLES / "seed_baseline.cfc"), "--solution",
                        str(solution), "-o", str(out))
    assert code == 0, err
    text = out.read_text()
    assert "relaxed value" in text and fills["gate"] in text
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"x": {"gate": [0.1, 0.2]}}))
    code, _, err = _cfc(capsys, "graph", str(EXAMPLES / "seed_baseline.cfc"), "--solution",
                        str(bad), "-o", str(out))
    assert code == 2 and "'gate' has shape [2]" in err


@needs_dot
def test_jupyter_reprs_are_svg() -> None:
    model = cfc.load(str(EXAMPLES / "sequence_redemption.cfc"))
    assert "<svg" in model._repr_svg_()
    problem = model.compile(backend="python").bind(sizes={"N": 12, "D": 5})
    assert problem._repr_svg_().count('class="node"') == problem.bound.n + sum(
        t.size for t in problem.bound.families)
    relaxed = problem.relax(max_steps=20)
    assert "relaxed value" in relaxed._repr_svg_()


def test_write_figure_makes_parent_folders(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "chain.tex"
    write_figure(_scene("seed_baseline", "families"), out)
    assert out.read_text().startswith("% generated by cfc")


# ---------------------------------------------------------------- notation and colours
def test_formulas_print_as_unicode_and_latex() -> None:
    model = cfc.load(str(EXAMPLES / "chain.cfc"))
    landau = model.energy("landau").body
    assert unicode_expr(landau) == "a·x² + b·x⁴ − h·x"
    assert latex_expr(landau) == r"a\,x^{2} + b\,x^{4} - h\,x"
    asym = model.energy("asym_hinge").body
    assert unicode_expr(asym) == "w·relu(β·y − α·x)²"
    assert unicode_element("eta", (12,)) == "η₁₂" and unicode_element("x", (1, 2)) == "x₁,₂"


def test_palette_is_okabe_ito_and_viridis_runs_dark_to_light() -> None:
    assert PALETTE[:3] == ("#0072B2", "#E69F00", "#009E73")
    assert viridis(0.0) == "#440154" and viridis(1.0) == "#fde725"
    assert viridis(-3) == viridis(0.0) and viridis(0.5) == "#21918c"


def test_graph_runs_in_the_documented_way(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "grid.dot"
    code, _, err = _cfc(capsys, "graph", str(EXAMPLES / "grid_percolation.cfc"),
                        *_data_args("grid_percolation"), "-o", str(out))
    assert code == 0, err
    assert out.read_text() == (GOLDEN / "dot" / "grid_percolation.expanded.dot").read_text()
    assert os.path.getsize(out) > 1000


# ---------------------------------------------------------------- reviewer's checks (issue 10)
def _segment_gap(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    t = float(np.clip(np.dot(p - a, b - a) / max(float(np.dot(b - a, b - a)), 1e-12), 0, 1))
    return float(np.hypot(*(a + t * (b - a) - p)))


@pytest.mark.parametrize("name,settings", [(n, ()) for n in EXAMPLE_NAMES]
                         + [("sequence_redemption", (Setting("N", 24), Setting("D", 10)))])
def test_no_factor_sits_on_another_factors_edge(name: str, settings: tuple[Setting, ...]) -> None:
    model, bound = _bound(name, *settings)
    scene = expanded_scene(bound)
    at = {n.id: np.array([n.x, n.y]) for n in scene.nodes}
    factors = [n for n in scene.nodes if n.kind == "factor"]
    shortcut = {f"{f.name}(" for f in model.families if f.name == "shortcut"}
    edges = [e for e in scene.edges if not any(e.tail.startswith(s) for s in shortcut)]
    for factor in factors:
        for edge in edges:
            if edge.tail == factor.id:
                continue
            gap = _segment_gap(at[factor.id], at[edge.tail], at[edge.head])
            assert gap >= factor.size / 2, (factor.id, edge.tail, edge.head, gap)


def _legend_share(svg: bytes) -> float:
    """The share of the figure's area in the legend's bounding box. The legend is the
    graph's label: the text and cells drawn outside every node and edge."""
    root = ET.fromstring(svg)
    graph = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "graph")
    polygons = graph.findall(f"{SVG}polygon")

    def ys(poly: ET.Element) -> list[float]:
        return [float(p.split(",")[1]) for p in poly.get("points", "").split()]

    def xs(poly: ET.Element) -> list[float]:
        return [float(p.split(",")[0]) for p in poly.get("points", "").split()]

    top, bottom = min(ys(polygons[0])), max(ys(polygons[0]))  # the background
    left, right = min(xs(polygons[0])), max(xs(polygons[0]))
    texts = graph.findall(f"{SVG}text")
    marks = [float(t.get("y", "0")) - float(t.get("font-size", "0")) for t in texts]
    marks += [min(ys(p)) for p in polygons[1:]]
    # text widths are estimated generously: 0.6 em a character
    ends = [float(t.get("x", "0")) + len(t.text or "") * 0.6 * float(t.get("font-size", "0"))
            * (0.5 if t.get("text-anchor") == "middle" else 1.0) for t in texts]
    starts = [float(t.get("x", "0")) - (len(t.text or "") * 0.3 * float(t.get("font-size", "0"))
                                        if t.get("text-anchor") == "middle" else 0.0)
              for t in texts] + [min(xs(p)) for p in polygons[1:]]
    ends += [max(xs(p)) for p in polygons[1:]]
    if not marks:
        return 0.0
    width = min(max(ends), right) - max(min(starts), left)
    return (bottom - min(marks)) * width / ((bottom - top) * (right - left))


@needs_dot
@pytest.mark.parametrize("name,settings", [(n, ()) for n in EXAMPLE_NAMES]
                         + [("sequence_redemption", (Setting("N", 24), Setting("D", 10)))])
def test_legend_takes_at_most_a_quarter_of_the_figure(name: str,
                                                      settings: tuple[Setting, ...]) -> None:
    _, bound = _bound(name, *settings)
    share = _legend_share(render(expanded_scene(bound), "svg"))
    assert 0.0 < share <= 0.25, share


def test_colour_scale_is_fitted_to_the_solution_and_keeps_the_bounds() -> None:
    _, bound = _bound("chain", Setting("N", 6))
    values = {"eta": np.array([0.2, 0.25, 0.3, 0.35, 0.4, 0.6])}
    scene = expanded_scene(bound, values)
    bar = scene.colourbar
    assert bar is not None and (bar.low, bar.high) == (0.2, 0.6)
    assert (bar.bound_low, bar.bound_high) == (0.0, 1.0)
    fills = [n.fill for n in scene.nodes if n.kind == "variable"]
    assert fills[0] == viridis(0.0) and fills[-1] == viridis(1.0)
    assert len(set(fills)) == 6  # continuous: no two of these values share a bin
    text = dot_source(scene)
    assert "(bounds 0 to 1)" in text and f'BGCOLOR="{bar.colours[0]}:{bar.colours[1]}"' in text


def test_plate_view_shows_the_spread_not_a_mean() -> None:
    model, bound = _bound("seed_dense")
    ring = np.array([0.0] * 8 + [1.0] * 8)
    node = next(n for n in families_scene(model, bound, {"eta": ring}).nodes if n.id == "eta")
    assert not any("mean" in text for text, _ in node.lines)
    assert any(text == "min 0 · max 1" for text, _ in node.lines)
    assert node.strip[0] == viridis(0.0) and node.strip[-1] == viridis(1.0)
    assert node.strip.count(viridis(0.0)) == len(node.strip) // 2
    assert "BGCOLOR" in dot_source(families_scene(model, bound, {"eta": ring}))


def test_index_labels_with_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, bound = _bound("sequence_redemption", Setting("N", 24), Setting("D", 10))
    plain = expanded_scene(bound)
    assert not [n for n in plain.nodes if n.kind == "label"]
    labelled = expanded_scene(bound, labels=True)
    tags = {n.id: n.label for n in labelled.nodes if n.kind == "label"}
    assert tags == {f"eta[{i}]:label": str(i) for i in range(24)}
    out = tmp_path / "labels.dot"
    code, _, err = _cfc(capsys, "graph", str(EXAMPLES / "sequence_redemption.cfc"), "--set",
                        "N=24", "--set", "D=10", "--labels", "-o", str(out))
    assert code == 0, err
    assert '"eta[23]:label" [label=23' in out.read_text()


@needs_dot
def test_plate_label_lines_do_not_touch() -> None:
    """Each line of a plate box is its own table row with padding, so that the underscore
    of 'gate_cost' clears the formula line below it (a <BR/> stack let them touch)."""
    model, bound = _bound("sequence_redemption")
    svg = ET.fromstring(render(families_scene(model, bound), "svg"))
    group = next(g for g in svg.iter(f"{SVG}g") if g.get("class") == "node"
                 and g.find(f"{SVG}title").text == "gate_cost()")  # type: ignore[union-attr]
    ys = sorted(float(t.get("y", "0")) for t in group.findall(f"{SVG}text"))
    sizes = [float(t.get("font-size", "0")) for t in group.findall(f"{SVG}text")]
    assert len(ys) == 3 and min(np.diff(ys)) >= 1.25 * max(sizes)


def test_figures_are_deterministic() -> None:
    _, bound = _bound("sequence_redemption", Setting("N", 24), Setting("D", 10))
    values = {"eta": np.linspace(0, 1, 24), "gate": np.array(0.4)}
    first = [dot_source(expanded_scene(bound, values, labels=True)),
             tikz_source(expanded_scene(bound, values, labels=True))]
    again = [dot_source(expanded_scene(bound, values, labels=True)),
             tikz_source(expanded_scene(bound, values, labels=True))]
    assert first == again
