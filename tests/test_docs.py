"""Every command and option is documented in the README, and every command's --help ends with
examples that use it (as sqlite-utils checks its docs)."""

from __future__ import annotations

import re

import pytest
from typer.main import get_command

from keras_cut.cli import app
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
