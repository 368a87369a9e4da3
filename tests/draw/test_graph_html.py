"""`keras-cut graph -o FILE.html`: one self-contained page, checked in a real browser.

Headless Chromium opens the page from disk with every network request made to fail; the DOM it
rendered must hold every layer of the model (names from Keras' loaded model) exactly once, the
search must find a layer, and a screenshot must show the graph. Where no Chromium is installed
these tests skip, naming it (CI installs Debian's `chromium`)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from keras_cut.draw.drawing import Drawing, Edge, Node
from keras_cut.present.htmlpage import to_html
from sample_models.registry import BY_NAME
from tests.cli_helpers import run_cli
from tests.draw.test_graph import keras_layers_and_edges, parse_mermaid

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
needs_browser = pytest.mark.skipif(
    BROWSER is None, reason="no headless browser: install Chromium (Debian: apt-get install "
    "chromium) for the .html page tests")


def browse(page: Path, tmp_path: Path, fragment: str = "", screenshot: Path | None = None,
           size: str = "1280,900") -> str:
    """The DOM after the page's scripts ran (or a screenshot), with the network unreachable."""
    args = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
            "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--window-size={size}", "--virtual-time-budget=10000"]
    args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    proc = subprocess.run(args + [page.resolve().as_uri() + fragment], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def rendered_nodes(dom: str) -> list[tuple[str, str]]:
    """(data-label, class) of every drawn layer node."""
    return [(html.unescape(label), cls) for cls, label in
            re.findall(r'<g class="(node[^"]*)" data-id="n\d+" data-label="([^"]*)"', dom)]


def test_page_is_self_contained_and_escapes_names(tmp_path):
    """No external reference; a hostile layer name stays text (checked without a browser)."""
    evil = '</script><img src=x onerror="alert(1)">'
    drawing = Drawing("m", [Node("n0", "in", "InputLayer", "(None, 3)", 0, "input", ()),
                            Node("n1", evil, "Dense", "(None, 2)", 8, "plain", (),
                                 {"name": evil})],
                      [Edge("n0", "n1")], {}, model="my model.keras")
    page = to_html(drawing)
    assert not re.search(r"<(script|img|link|iframe)[^>]*\s(src|href)=", page, re.I)
    assert "<img" not in page and page.count("</script>") == page.count("<script")
    data = json.loads(re.search(r'id="graph-data">(.*?)</script>', page, re.S).group(1))
    assert data["nodes"][1]["label"] == evil  # intact once parsed
    commands = [c["command"] for c in data["nodes"][1]["commands"]]
    assert commands == ["keras-cut cut 'my model.keras' -o 'my model_to_script_img_src_x_onerror_"
                        "alert_1.keras' --output-layer '</script><img src=x onerror=\"alert(1)\">'"]
    assert data["nodes"][0]["commands"] == []  # a cut cannot start or end at the model input


@needs_browser
@pytest.mark.parametrize("sample", ["residual", "shared", "nested", "cnn_h5"])
def test_every_layer_rendered_once(sample, tmp_path, capsys, keras):
    path = BY_NAME[sample].path
    page = tmp_path / "g.html"
    assert run_cli(capsys, "graph", path, "-o", page).code == 0
    assert run_cli(capsys, "graph", path, "-o", tmp_path / "g.mmd").code == 0
    expected, _ = parse_mermaid((tmp_path / "g.mmd").read_text())
    dom = browse(page, tmp_path)
    assert 'data-ready="true"' in dom
    labels = [label for label, _ in rendered_nodes(dom)]
    assert sorted(labels) == sorted(label for label, _ in expected.values())
    assert len(labels) == len(set(labels))
    names, edges = keras_layers_and_edges(keras, path)
    top = {label.split("/")[0].split("@")[0] for label in labels}
    assert top == set(names)  # Keras' own top-level layers, every one
    assert dom.count('<g class="edge') >= len(edges)
    if sample == "nested":
        assert 'class="cluster" data-label="backbone"' in dom


@needs_browser
def test_search_and_details_in_the_browser(tmp_path, capsys):
    page = tmp_path / "cut.html"
    result = run_cli(capsys, "graph", BY_NAME["residual"].path, "-o", page, "--input-layer",
                     "res_b")
    assert result.code == 0, result.err
    dom = browse(page, tmp_path, "#search=res_")
    nodes = dict(rendered_nodes(dom))
    found = [label for label, cls in nodes.items() if "match" in cls.split()]
    assert sorted(found) == ["res_a", "res_add", "res_b", "res_c", "res_out", "res_pool",
                             "res_relu"]
    assert [label for label, cls in nodes.items() if "current" in cls.split()] == ["res_a"]
    assert re.search(r'id="matches"[^>]*>1 of 7<', dom)
    assert "role-crossing" in nodes["res_a"] and "role-cut_input" in nodes["res_b"]
    assert "role-dropped" in nodes["image"] and "role-output" in nodes["res_out"]
    # the details panel of the match: its commands, ready to copy
    assert re.search(r"<h2>res_a<", dom)
    assert "--output-layer res_a</code>" in dom and "--input-layer res_a</code>" in dom
    dom = browse(page, tmp_path, "#search=no_such_layer")
    assert "no layer matches" in dom and " match" not in "".join(c for _, c in
                                                                   rendered_nodes(dom))
    dom = browse(page, tmp_path, "#layer=res_relu")
    assert re.search(r"<h2>res_relu<", dom)


@needs_browser
def test_screenshot_shows_the_graph(tmp_path, capsys):
    from PIL import Image

    page = tmp_path / "g.html"
    assert run_cli(capsys, "graph", BY_NAME["residual"].path, "-o", page, "--input-layer",
                   "res_b").code == 0
    shot = tmp_path / "shot.png"
    browse(page, tmp_path, screenshot=shot, size="1000,800")
    image = Image.open(shot).convert("RGB")
    assert image.size == (1000, 800)
    colors = image.getcolors(maxcolors=1 << 20)
    assert len(colors) > 200  # text, boxes and edges, not a blank page
    pixels = {rgb for _, rgb in colors}
    assert (0xdf, 0xf3, 0xe0) in pixels  # kept layers' fill
    assert (0xfc, 0xe4, 0xec) in pixels  # the layer whose output crosses the cut


@needs_browser
def test_hostile_names_stay_text_in_the_browser(tmp_path):
    evil = '</script><img src=x onerror="document.title=1">'
    drawing = Drawing("m", [Node("n0", "in", "InputLayer", "(None, 3)", 0, "input", ()),
                            Node("n1", evil, "Dense", "(None, 2)", 8, "plain", ())],
                      [Edge("n0", "n1")], {}, model="m.keras")
    page = tmp_path / "evil.html"
    page.write_text(to_html(drawing), encoding="utf-8")
    dom = browse(page, tmp_path, "#search=onerror")
    assert 'data-ready="true"' in dom and "<img" not in dom
    assert [label for label, _ in rendered_nodes(dom)] == ["in", evil]
    assert re.search(r'id="matches"[^>]*>1 of 1<', dom)
    dom = browse(page, tmp_path, "#search=50%")  # not valid percent-encoding: still a page
    assert 'data-ready="true"' in dom and "no layer matches" in dom
