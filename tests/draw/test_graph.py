"""`keras-cut graph`: every layer call drawn exactly once, edges as the model connects them, and
a cut's roles as the written submodel has them. DOT is parsed by Graphviz itself (`dot
-Tjson`), SVG as XML, Mermaid by its grammar's node and edge lines; the expected layers and
connections come from Keras' loaded model, or from the submodel file `cut` writes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zipfile

import pytest

from sample_models.registry import BY_NAME
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.keras_private import own_calls, own_graph, producer

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's `dot` is not installed (apt-get install "
                                      "graphviz); the .svg/.png/.pdf tests need it")


def keras_layers_and_edges(keras, path):
    """Layer names and (producer, consumer) pairs from Keras' own loaded model (top level)."""
    model = keras.saving.load_model(path, compile=False)
    graph = own_graph(model)
    names = [layer.name for layer in model.layers]
    edges = set()
    for layer in model.layers:
        for node in own_calls(graph, layer):
            for t in node.input_tensors:
                edges.add((producer(t).name, layer.name))
    return names, edges


def parse_dot(path):
    """(label first line -> node id, edges as label pairs), parsed by Graphviz."""
    proc = subprocess.run(["dot", "-Tjson", str(path)], capture_output=True, text=True,
                          check=True)
    doc = json.loads(proc.stdout)
    objects = doc.get("objects", [])
    nodes = {o["_gvid"]: o for o in objects if "nodes" not in o and "subgraphs" not in o
             and not o["name"].startswith("legend_")}
    label = {gvid: o["label"].split("\\n")[0] for gvid, o in nodes.items()}
    edges = {(label[e["tail"]], label[e["head"]]) for e in doc.get("edges", [])
             if e["tail"] in label and e["head"] in label}
    return nodes, label, edges


def parse_mermaid(text):
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    nodes = {}
    for line in lines:
        m = re.fullmatch(r'\s*(n\d+)\["([^"]*)"\]:::(\w+)', line)
        if m:
            assert m.group(1) not in nodes
            nodes[m.group(1)] = (m.group(2).split("<br/>")[0], m.group(3))
    edges = set()
    for line in lines:
        m = re.fullmatch(r"\s*(n\d+) --> (n\d+)", line)
        if m:
            edges.add((nodes[m.group(1)][0], nodes[m.group(2)][0]))
    return nodes, edges


@needs_dot
@pytest.mark.parametrize("sample", ["residual", "shared", "cnn_h5", "two_heads"])
def test_dot_and_mermaid_match_keras(sample, tmp_path, capsys, keras):
    path = BY_NAME[sample].path
    names, edges = keras_layers_and_edges(keras, path)
    assert run_cli(capsys, "graph", path, "-o", tmp_path / "g.dot").code == 0
    nodes, label, drawn = parse_dot(tmp_path / "g.dot")
    plain = [label[g].split("@")[0] for g in nodes]
    assert sorted(set(plain)) == sorted(names)  # every layer, and only layers
    calls = {n: sum(1 for p in plain if p == n) for n in names}
    if sample == "shared":
        assert calls["shared_dense"] == 2 and "shared_dense@1" in label.values()
    assert all(c == 1 for n, c in calls.items() if n != "shared_dense")
    assert {(a.split("@")[0], b.split("@")[0]) for a, b in drawn} == edges
    assert run_cli(capsys, "graph", path, "-o", tmp_path / "g.mmd").code == 0
    mnodes, medges = parse_mermaid((tmp_path / "g.mmd").read_text())
    assert sorted(lbl for lbl, _ in mnodes.values()) == sorted(label.values())
    assert medges == drawn


@needs_dot
def test_cut_roles_match_the_written_submodel(tmp_path, capsys):
    parent = BY_NAME["residual"].path
    sub = tmp_path / "head.keras"
    result = run_cli(capsys, "cut", parent, "-o", sub, "--input-layer", "res_b", "--graph",
                     tmp_path / "cut.svg")
    assert result.code == 0, result.err
    with zipfile.ZipFile(sub) as zf:
        config = json.loads(zf.read("config.json"))
    kept = {layer["name"] for layer in config["config"]["layers"]
            if layer["class_name"] != "InputLayer"}
    assert run_cli(capsys, "graph", parent, "-o", tmp_path / "cut.mmd", "--input-layer",
                   "res_b").code == 0
    nodes, edges = parse_mermaid((tmp_path / "cut.mmd").read_text())
    roles = dict(nodes.values())
    assert {n for n, r in roles.items() if r in ("kept", "output")} == kept
    assert roles["res_b"] == "cut_input" and roles["res_a"] == "crossing"
    assert roles["res_out"] == "output" and roles["image"] == "dropped"
    text = (tmp_path / "cut.mmd").read_text()
    crossing = [int(m) for m in re.findall(r"linkStyle (\d+) ", text)]
    edge_lines = re.findall(r"^\s*(n\d+) --> (n\d+)$", text, re.M)
    names = {k: v[0] for k, v in nodes.items()}
    assert [(names[a], names[b]) for i, (a, b) in enumerate(edge_lines) if i in crossing] == \
        [("res_a", "res_add")]  # the skip connection that crosses the cut
    svg = ET.parse(tmp_path / "cut.svg").getroot()
    ns = {"s": "http://www.w3.org/2000/svg"}
    titles = [g.find("s:title", ns).text for g in svg.iter("{http://www.w3.org/2000/svg}g")
              if g.get("class") == "node"]
    drawn = [t for t in titles if not t.startswith("legend_")]
    assert len(drawn) == len(set(drawn)) == len(nodes)
    assert len([t for t in titles if t.startswith("legend_")]) == 5


def test_depth_filter_and_errors(tmp_path, capsys):
    nested = BY_NAME["nested"].path
    assert run_cli(capsys, "graph", nested, "-o", tmp_path / "d0.mmd", "--depth", "0").code == 0
    nodes, _ = parse_mermaid((tmp_path / "d0.mmd").read_text())
    assert sorted(lbl for lbl, _ in nodes.values()) == ["backbone", "classifier", "image",
                                                         "pool"]
    assert run_cli(capsys, "graph", nested, "-o", tmp_path / "all.mmd").code == 0
    nodes, _ = parse_mermaid((tmp_path / "all.mmd").read_text())
    assert "backbone/block/block_conv" in {lbl for lbl, _ in nodes.values()}
    assert run_cli(capsys, "graph", nested, "-o", tmp_path / "f.mmd", "--filter",
                   "stem").code == 0
    nodes, _ = parse_mermaid((tmp_path / "f.mmd").read_text())
    assert {lbl for lbl, _ in nodes.values()} == {"backbone/stem_conv", "backbone/stem_bn",
                                                  "backbone/stem_relu"}
    for args, words in [
        (["--filter", "nothing_like_this"], ["--filter", "matches no layer"]),
        (["--filter", "("], ["--filter", "regular expression"]),
        (["--output-layer", "no_such"], ["no_such"]),
    ]:
        assert_one_line_error(run_cli(capsys, "graph", nested, "-o", tmp_path / "x.dot",
                                      *args), *words)
    assert_one_line_error(run_cli(capsys, "graph", nested, "-o", tmp_path / "x.txt"), ".mmd")
    (tmp_path / "exists.dot").write_text("keep me")
    assert_one_line_error(run_cli(capsys, "graph", nested, "-o", tmp_path / "exists.dot"),
                          "--force")
    assert (tmp_path / "exists.dot").read_text() == "keep me"


def test_missing_graphviz_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere
    result = run_cli(capsys, "graph", BY_NAME["cnn"].path, "-o", tmp_path / "g.svg")
    assert_one_line_error(result, "Graphviz", "apt-get install graphviz", ".dot")
    assert not (tmp_path / "g.svg").exists()
    assert run_cli(capsys, "graph", BY_NAME["cnn"].path, "-o", tmp_path / "g.dot").code == 0
    assert run_cli(capsys, "graph", BY_NAME["cnn"].path, "-o", tmp_path / "g.html").code == 0


@needs_dot
def test_png_and_pdf(tmp_path, capsys):
    for suffix, magic in ((".png", b"\x89PNG"), (".pdf", b"%PDF")):
        out = tmp_path / f"g{suffix}"
        assert run_cli(capsys, "graph", BY_NAME["nested"].path, "-o", out).code == 0
        assert out.read_bytes().startswith(magic)


def test_cut_graph_refused_before_cutting(tmp_path, capsys):
    (tmp_path / "pic.dot").write_text("old")
    result = run_cli(capsys, "cut", BY_NAME["cnn"].path, "-o", tmp_path / "s.keras",
                     "--output-layer", "flatten", "--graph", tmp_path / "pic.dot")
    assert_one_line_error(result, "pic.dot", "--force")
    assert not (tmp_path / "s.keras").exists()


def test_application_draws(app_dir, tmp_path, capsys):
    result = run_cli(capsys, "graph", app_dir / "resnet50.keras", "-o", tmp_path / "r.mmd",
                     "--input-layer", "conv4_block1_out")
    assert result.code == 0, result.err
    nodes, edges = parse_mermaid((tmp_path / "r.mmd").read_text())
    assert len(nodes) == 177 and len(edges) > 177
    assert dict(nodes.values())["conv4_block1_out"] == "cut_input"


def test_graph_json_lists_what_was_drawn(tmp_path, capsys):
    from sample_models.registry import BY_NAME
    from tests.cli_helpers import run_cli as _run

    out = tmp_path / "n.dot"
    result = _run(capsys, "graph", BY_NAME["nested"].path, "-o", out, "--json", "--input-layer",
                  "backbone/stem_relu")
    assert result.code == 0
    doc = json.loads(result.out)
    text = out.read_text()
    assert doc["output"] == str(out) and doc["cut"] is True
    assert len(doc["nodes"]) == text.count("[label=") - 5  # the legend's five boxes
    assert {n["role"] for n in doc["nodes"]} >= {"kept", "dropped", "cut_input", "output"}
    assert doc["clusters"] == [{"context": [["backbone", 0]], "label": "backbone"},
                               {"context": [["backbone", 0], ["block", 0]],
                                "label": "backbone/block"}]
    assert "drew 10 layer calls, 6 kept by the cut" in result.err
