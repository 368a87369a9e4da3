"""The library speaks in its own parameters, the command line in flags: one error, two
spellings, structured fields for a program to read."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from keras_cut import Tolerances, cut_model, verify_models
from keras_cut.core.errors import KerasCutError, LayerNameError, Option, UsageError
from sample_models.registry import BY_NAME
from tests.cli_helpers import run_cli

PACKAGE = Path(__file__).resolve().parents[2] / "keras_cut"
FLAG = re.compile(r"--[a-z][a-z-]+")


def test_a_wrong_layer_name_in_the_library_names_the_parameter(tmp_path):
    with pytest.raises(LayerNameError) as caught:
        cut_model(BY_NAME["residual"].path, tmp_path / "x.keras", output_layers=["res_bb"])
    err = caught.value
    assert str(err).startswith("output_layers 'res_bb': no layer 'res_bb'")
    assert err.options == [Option.OUTPUT_LAYERS] and err.layer == "res_bb"
    assert not FLAG.search(str(err))


def test_the_command_line_spells_the_same_error_as_its_flag(tmp_path, capsys):
    result = run_cli(capsys, "cut", BY_NAME["residual"].path, "-o", tmp_path / "x.keras",
                     "--output-layer", "res_bb")
    assert result.code == 2
    assert result.err.startswith("Error: --output-layer 'res_bb': no layer 'res_bb'")


def test_switches_read_as_python_in_the_library():
    err = UsageError("pass ", Option.UNSAFE, " only if you trust the file")
    assert str(err) == "pass unsafe=True only if you trust the file"
    assert err.text(lambda o: "--" + o.value.replace("_", "-")) == \
        "pass --unsafe only if you trust the file"


def test_a_replaced_error_keeps_its_parts_and_type():
    err = UsageError(Option.INPUTS, " /tmp/a.partial: bad", layer="x").replaced(
        "/tmp/a.partial", "out.keras")
    assert type(err) is UsageError and err.options == [Option.INPUTS] and err.layer == "x"
    assert str(err) == "inputs out.keras: bad"


def test_tolerances_are_typed_values(tmp_path):
    with pytest.raises(UsageError, match=r"^atol: a tolerance is a finite number"):
        Tolerances(atol=float("nan"))
    with pytest.raises(UsageError, match=r"^rtol logits=\.\.\.: a tolerance"):
        Tolerances(rtol_for={"logits": -1.0})
    tol = Tolerances(atol=1e-3).over(Tolerances(atol=1.0, rtol=0.5, atol_for={"a": 2.0}))
    assert (tol.atol, tol.rtol, tol.atol_for) == (1e-3, 0.5, {"a": 2.0})
    assert Tolerances().over(None).to_dict()["atol"] == 1e-5


def test_verify_takes_a_tolerances_object(tmp_path):
    spec = BY_NAME["residual"]
    head = tmp_path / "head.keras"
    cut_model(spec.path, head, input_layers=["res_b"])
    with pytest.raises(UsageError) as caught:
        verify_models(spec.path, head, tolerances=Tolerances(atol_for={"nope": 1.0}))
    assert str(caught.value).startswith("atol nope=...: the submodel has no output 'nope'")


def _library_error_literals(package: Path = PACKAGE) -> list[str]:
    """Every string literal given to one of our errors in the library (not the CLI)."""
    found = []
    for path in package.rglob("*.py"):
        if path.parent.name in ("cli", "present"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", "") \
                if isinstance(node, ast.Call) else ""
            if name.endswith("Error"):
                for arg in ast.walk(node):
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and \
                            FLAG.search(arg.value):
                        found.append(f"{path.relative_to(package.parent)}:{arg.lineno}: "
                                     f"{arg.value!r}")
    return found


def test_no_library_error_spells_a_flag():
    assert _library_error_literals() == []


def test_the_scan_finds_a_flag_spelled_in_the_library(tmp_path):
    (tmp_path / "keras_cut" / "model").mkdir(parents=True)
    (tmp_path / "keras_cut" / "model" / "x.py").write_text(
        "def f():\n    return UsageError(f'pass --unsafe {1}')\n")
    assert len(_library_error_literals(tmp_path / "keras_cut")) == 1


def test_every_option_has_a_flag():
    from keras_cut.cli.app import FLAGS

    assert set(FLAGS) == set(Option)
    assert all(isinstance(KerasCutError(o), KerasCutError) for o in Option)
