"""Every command and option is documented in the README, and every command's --help ends with
examples that use it (as sqlite-utils checks its docs)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.main import get_command

from keras_cut.cli.app import app
from tests.cli_helpers import ROOT, run_cli

README = (ROOT / "README.md").read_text(encoding="utf-8")
CLI = get_command(app)
COMMANDS = sorted(CLI.commands)


def _options(command) -> list[str]:
    return [opt for param in command.params for opt in (*param.opts, *param.secondary_opts)
            if opt.startswith("--") and opt != "--help"]


@pytest.mark.parametrize("name", COMMANDS)
def test_command_and_its_options_are_in_the_readme(name):
    assert f"keras-cut {name}" in README
    command = CLI.commands[name]
    missing = [opt for opt in _options(command)
               if not re.search(re.escape(opt) + r"(?![\w-])", README)]
    assert not missing, f"README does not document {name} {missing}"


def test_global_options_are_in_the_readme():
    missing = [opt for opt in _options(CLI) if opt not in README]
    assert not missing, missing


@pytest.mark.parametrize("name", COMMANDS)
def test_help_ends_with_examples(name, capsys):
    result = run_cli(capsys, name, "--help")
    assert result.code == 0
    tail = result.out.rstrip().split("Examples:")[-1]
    assert "Examples:" in result.out and result.out.rstrip().endswith(tail)
    assert len(re.findall(rf"^\s+keras-cut {name} ", tail, re.M)) >= 2


def _console_examples() -> list[tuple[int, list[str], list[str]]]:
    """(line, argv, the output shown) for each `$ keras-cut …` in the README's console blocks
    that reads only the sample models (or files an earlier example wrote)."""
    found = []
    lines = README.splitlines()
    inside = False
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            inside = line.strip() == "```console"
            continue
        if inside and line.startswith("$ keras-cut ") and "<Tab>" not in line:
            argv = shlex.split(line[len("$ keras-cut "):].split("  #")[0])
            shown = []
            for following in lines[number:]:
                if following.startswith(("$ ", "```")):
                    break
                shown.append(following)
            found.append((number, argv, shown))
    return found


EXAMPLES = _console_examples()


@pytest.mark.heavy  # one example runs verify (TensorFlow)
def test_the_readme_console_examples_show_what_keras_cut_prints(tmp_path, capsys,
                                                                monkeypatch):
    """Each example on the sample models, run as written (in order, so a file one writes is
    there for the next): every line it shows is a line keras-cut prints, and every line of
    the result (stdout) is shown."""
    import shutil

    shutil.copytree(ROOT / "sample_models", tmp_path / "sample_models")
    monkeypatch.chdir(tmp_path)
    ran = 0
    for number, argv, shown in EXAMPLES:
        files = [a for a in argv if a.endswith((".keras", ".h5", ".npz"))]
        output = argv[argv.index("-o") + 1] if "-o" in argv else None
        if not files or any(not Path(f).exists() for f in files if f != output):
            continue  # an example on the reader's own model (resnet50.keras)
        if output and Path(output).suffix in (".png", ".svg", ".pdf"):
            continue  # needs Graphviz, and its picture is not text
        result = run_cli(capsys, *argv, *(["--force"] if output else []))
        printed = (result.out + result.err).splitlines()
        assert result.code in (0, 1), (number, result.err)
        missing = [line for line in shown if line not in printed and line != "..."]
        assert not missing, f"README line {number}: shows lines keras-cut does not print: {missing}"
        extra = [line for line in result.out.splitlines() if line not in shown]
        assert "..." in shown or not extra, \
            f"README line {number}: keras-cut prints lines it does not show: {extra}"
        ran += 1
    assert ran >= 4
