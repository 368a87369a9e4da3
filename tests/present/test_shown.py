"""Nothing read from a file reaches a terminal or a picture raw: a layer named with escape
sequences, C1 controls or bidirectional overrides is shown with visible stand-ins, in every
command's output, on both streams, on the fast table path and through Rich's own tables; a
picture stays valid XML and bounds a long name (the whole name is in its tooltip)."""

from __future__ import annotations

import json
import re
import shutil
import xml.dom.minidom

import pytest

from keras_cut.core.shown import bounded, visible
from tests.cli_helpers import run_cli

ESC_M = "\x1bM"  # reverse index: moves the cursor up a line, over what was printed
HOSTILE = ("lam" + ESC_M * 3, "evil\u202egnp.exe", "reset\x1bc", "c1\x9b31m", "del\x7f",
           "long_" + "x" * 295, "bel\x07l", "tab\tnew\nline")
# anything a terminal would act on: C0 but the newline, DEL, C1, bidirectional formatting
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f\x80-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f]")
SGR = re.compile(r"\x1b\[[0-9;]*m")  # Rich's own colours and styles


def test_visible_and_bounded():
    assert visible("a\x1bb\x00c\x7fd\x9be\u202ef\u2067g\nh") == \
        "a\u241bb\u2400c\u2421d<U+009B>e<U+202E>f<U+2067>g\nh"
    assert visible("plain ünïcödé name") == "plain ünïcödé name"
    assert bounded("x" * 300) == "x" * 59 + "…" and len(bounded("x" * 300)) == 60
    assert bounded("short") == "short"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, keras):
    L = keras.layers
    h = x = keras.Input((4,), name="x")
    for name in HOSTILE:
        h = L.Dense(4, name=name)(h)
    path = tmp_path_factory.mktemp("hostile") / "hostile.keras"
    keras.Model(x, h).save(path)
    return path


pytestmark = pytest.mark.heavy  # builds the hostile model with Keras


@pytest.mark.parametrize("args", [["inspect"], ["inspect", "--depth", "0"],
                                  ["inspect", "--layer", "del\x7f"], ["graph", "-o", "-"]])
def test_commands_show_stand_ins(hostile, capsys, args):
    if args[0] == "graph":
        args = ["graph", "-o", str(hostile.with_suffix(".mmd")), "--force"]
        result = run_cli(capsys, args[0], hostile, *args[1:])
        text = hostile.with_suffix(".mmd").read_text()
        assert not RAW.search(text) and "lam\u241bM" in text
    else:
        result = run_cli(capsys, args[0], hostile, *args[1:])
        assert result.code == 0, result.err
    for stream in (result.out, result.err):
        assert not RAW.search(stream), RAW.search(stream)
    if args == ["inspect"]:
        assert "lam\u241bM\u241bM\u241bM" in result.out and "evil<U+202E>gnp.exe" in result.out


def test_errors_show_stand_ins(hostile, tmp_path, capsys):
    result = run_cli(capsys, "cut", hostile, "-o", tmp_path / "s.keras", "--output-layer",
                     "nope\x1b[2J")
    assert result.code == 2 and not RAW.search(result.err)


def test_a_terminal_gets_only_rich_own_escapes(hostile):
    import io

    from rich.console import Console

    from keras_cut.inspect.inspection import inspect_model
    from keras_cut.present.render import ShownConsole, render_inspect

    out = io.StringIO()
    render_inspect(inspect_model(hostile),
                   ShownConsole(file=out, width=200, force_terminal=True, color_system="standard"))
    text = SGR.sub("", out.getvalue())
    assert not RAW.search(text) and "lam\u241bM\u241bM\u241bM" in text
    plain = io.StringIO()  # Rich alone would send them: the check above can fail
    Console(file=plain, width=200).print("lam" + ESC_M)
    assert ESC_M in plain.getvalue()


def test_the_table_lines_up(hostile, capsys):
    result = run_cli(capsys, "inspect", hostile)
    rows = [line for line in result.out.splitlines() if line.startswith(("│", "┃", "┏"))]
    assert len({len(row) for row in rows}) == 1, rows


def test_pictures(hostile, tmp_path, capsys):
    dot = tmp_path / "h.dot"
    assert run_cli(capsys, "graph", hostile, "-o", dot).code == 0
    text = dot.read_text()
    assert not RAW.search(text)
    assert "long_" + "x" * 54 + "…" in text  # the box: bounded
    assert "long_" + "x" * 295 in text  # the tooltip: whole
    page = tmp_path / "h.html"
    assert run_cli(capsys, "graph", hostile, "-o", page).code == 0
    data = json.loads(re.search(r'<script type="application/json" id="graph-data">(.*?)'
                                r"</script>", page.read_text(), re.S).group(1))
    node = next(n for n in data["nodes"] if n["label"].startswith("long_"))
    assert node["text"].endswith("…") and len(node["text"]) == 60
    assert next(n for n in data["nodes"] if n["label"].startswith("lam"))["shown"] == \
        "lam\u241bM\u241bM\u241bM"
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")
    svg = tmp_path / "h.svg"
    assert run_cli(capsys, "graph", hostile, "-o", svg).code == 0
    xml.dom.minidom.parse(str(svg))  # valid XML: no control character reached it


def test_names_rich_would_drop_or_split(hostile, capsys):
    """Rich drops BEL silently and breaks a row at a newline: both are shown as stand-ins on
    the name's own line, so two names never look the same."""
    out = run_cli(capsys, "inspect", hostile).out
    assert "bel\u2407l" in out and "tab\u2409new\u240aline" in out
    assert not [line for line in out.splitlines() if line.strip("│ ").startswith("line")]


def test_completion_leaves_out_names_it_cannot_offer_safely(hostile, monkeypatch):
    from keras_cut.cli.completion import complete_layer

    monkeypatch.delenv("_KERAS_CUT_COMPLETE", raising=False)
    offered = complete_layer(str(hostile), "")
    assert "x" in offered and "long_" + "x" * 295 in offered
    assert not [n for n in offered if RAW.search(n) or "\n" in n]


def test_page_commands_quote_names_for_the_shell(hostile, tmp_path, capsys):
    import subprocess

    page = tmp_path / "h.html"
    assert run_cli(capsys, "graph", hostile, "-o", page).code == 0
    data = json.loads(re.search(r'<script type="application/json" id="graph-data">(.*?)'
                                r"</script>", page.read_text(), re.S).group(1))
    commands = [c["command"] for n in data["nodes"] for c in n["commands"]]
    assert commands and not [c for c in commands if RAW.search(c)]
    evil = next(c for c in commands if "evil" in c and "--output-layer" in c)
    word = evil.rsplit("--output-layer ", 1)[1]
    assert word == "$'evil\\u202egnp.exe'"
    echoed = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True).stdout
    assert echoed.decode() == "evil\u202egnp.exe"  # the shell passes the real name
