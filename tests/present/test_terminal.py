"""Terminals: names are never cut or wrapped (a narrow terminal gets one block per row),
NO_COLOR and TERM=dumb get no escape codes, and a pipe gets plain, unwrapped text."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys

import pytest
from rich.console import Console

from keras_cut.cut.cutting import cut_model
from keras_cut.inspect.inspection import inspect_model
from keras_cut.present.render import render_cut, render_inspect
from sample_models.registry import BY_NAME
from tests.cli_helpers import ROOT


def _render(fn, report, width: int) -> str:
    out = io.StringIO()
    fn(report, Console(file=out, width=width, force_terminal=False, color_system=None))
    return out.getvalue()


@pytest.mark.parametrize("width", [40, 60, 200])
def test_inspect_never_cuts_a_name(width):
    report = inspect_model(BY_NAME["nested"].path)
    text = _render(render_inspect, report, width)
    lines = text.splitlines()
    for row in report.layers:
        assert any(row.name in line for line in lines), (width, row.name)
    assert "…" not in text
    if width < 60:
        assert "  Class: Conv2D" in text  # the stacked layout
    if width == 200:
        assert "┃ Layer (path)" in text  # a table where it fits


def test_cut_table_never_cuts_a_name(tmp_path):
    result = cut_model(BY_NAME["nested"].path, tmp_path / "s.keras",
                       ["backbone/block/block_relu"], ["backbone/stem_relu"])
    for width in (30, 50, 120):
        text = _render(render_cut, result, width)
        assert "backbone/block/block_relu" in text and "backbone/stem_relu" in text
        assert "…" not in text


def _in_terminal(env_extra: dict[str, str]) -> str:
    """Run `keras-cut inspect` in a pseudo-terminal, as a user would see it."""
    return _pty_run(["inspect", str(BY_NAME["nested"].path)], env_extra)


def test_colors_only_where_wanted():
    assert "\x1b[" in _in_terminal({})  # a terminal gets bold and colour
    assert "\x1b[" not in _in_terminal({"NO_COLOR": "1"})
    assert "\x1b[" not in _in_terminal({"TERM": "dumb"})


def test_a_pipe_gets_plain_unwrapped_text():
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    out = subprocess.run([sys.executable, "-m", "keras_cut", "inspect",
                          str(BY_NAME["nested"].path)], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=60).stdout
    assert "\x1b[" not in out
    row = next(line for line in out.splitlines() if "backbone/block/block_conv" in line)
    assert "Conv2D" in row and "(None, 16, 16, 8)" in row  # one line per layer, not folded


def _pty_run(args: list[str], env_extra: dict[str, str] | None = None) -> str:
    """Run keras-cut in a pseudo-terminal; everything it wrote there (stdout and stderr)."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    env.update({"TERM": "xterm-256color", "COLUMNS": "200"}, **(env_extra or {}))
    proc = subprocess.Popen([sys.executable, "-m", "keras_cut", *args], stdin=follower,
                            stdout=follower, stderr=follower, env=env, cwd=ROOT, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_progress_on_a_terminal_only(tmp_path):
    args = ["cut", str(BY_NAME["residual"].path), "-o", str(tmp_path / "s.keras"),
            "--input-layer", "res_b", "--force"]
    assert "writing " in _pty_run(args)  # the live status line, on a terminal
    piped = subprocess.run([sys.executable, "-m", "keras_cut", *args], capture_output=True,
                           text=True, cwd=ROOT, timeout=60)
    assert piped.returncode == 0 and "writing" not in piped.stderr + piped.stdout


def test_columns_sets_the_width_of_piped_output():
    env = dict(os.environ, COLUMNS="60", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "keras_cut", "inspect",
                           str(BY_NAME["cnn"].path)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "  Class: Conv2D" in proc.stdout  # the stacked layout of a narrow terminal
    assert not [line for line in proc.stdout.splitlines() if line.startswith(("│", "┃"))]


def test_a_narrow_weights_table_keeps_numbers_whole():
    env = dict(os.environ, COLUMNS="60", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "keras_cut", "inspect",
                           str(BY_NAME["cnn"].path), "--layer", "conv2d"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    weights = proc.stdout.split("Weights", 1)[1].split("Config:", 1)[0]
    assert "  Shape: (3, 3, 3, 32)" in weights and "kernel" in weights
    for line in weights.splitlines():  # every statistic on one line, as a whole number
        if line.strip().startswith(("Min:", "Max:", "Mean:")):
            float(line.split(":", 1)[1])
