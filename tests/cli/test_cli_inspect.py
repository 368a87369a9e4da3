"""`keras-cut inspect` as a user runs it: output, options, JSON, exit codes."""

from __future__ import annotations

import json

import pytest

from sample_models.registry import BY_NAME, SAMPLES
from tests.cli_helpers import assert_one_line_error, run_cli

REQUIRED_KEYS = {
    "format", "keras_version", "name", "class_name", "inputs", "outputs", "layers",
    "total_params", "trainable_params", "non_trainable_params", "findings",
}


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_json_document(sample, capsys):
    result = run_cli(capsys, "inspect", sample.path, "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert REQUIRED_KEYS <= set(doc)
    assert doc["format"] == ("h5" if sample.file.endswith(".h5") else "keras")
    for tensor in doc["inputs"] + doc["outputs"]:
        assert set(tensor) == {"name", "shape", "dtype"}
    for layer in doc["layers"]:
        assert {"name", "class_name", "output_shape", "params", "trainable", "inbound"} <= set(
            layer
        )
    assert doc["total_params"] == doc["trainable_params"] + doc["non_trainable_params"]
    assert doc["total_params"] == sum(
        layer["params"] for layer in doc["layers"] if layer["depth"] == 0
    )


def test_table_shows_header_layers_and_footer(capsys):
    result = run_cli(capsys, "inspect", BY_NAME["cnn"].path)
    assert result.code == 0
    for text in ("Format", "keras", "3.", "image: (None, 28, 28, 3) float32",
                 "intermediate_dense", "(None, 128)", "classification_head", "Total params:",
                 "Trainable params:", "Non-trainable params:", "Findings: none"):
        assert text in result.out, text
    assert result.err == ""


def test_nested_paths_and_depth(capsys):
    path = BY_NAME["nested"].path
    full = json.loads(run_cli(capsys, "inspect", path, "--json").out)
    names = [layer["name"] for layer in full["layers"]]
    assert "backbone/block/block_conv" in names and "backbone/stem_bn" in names
    shallow = json.loads(run_cli(capsys, "inspect", path, "--json", "--depth", "1").out)
    names1 = [layer["name"] for layer in shallow["layers"]]
    assert "backbone/stem_bn" in names1 and "backbone/block/block_conv" not in names1
    top = json.loads(run_cli(capsys, "inspect", path, "--json", "--depth", "0").out)
    assert [layer["name"] for layer in top["layers"]] == ["image", "backbone", "pool", "classifier"]


def test_shared_layer_calls_are_numbered(capsys):
    doc = json.loads(run_cli(capsys, "inspect", BY_NAME["shared"].path, "--json").out)
    layers = {layer["name"]: layer for layer in doc["layers"]}
    assert layers["shared_dense"]["calls"] == 2
    assert layers["both"]["inbound"] == ["shared_dense@0", "shared_dense@1"]
    assert layers["shared_dense"]["inbound"] == ["pre", "shared_dense@0"]


def test_filter_by_name_and_class(capsys):
    doc = json.loads(run_cli(capsys, "inspect", BY_NAME["cnn"].path, "--json",
                             "--filter", "Conv2D|head").out)
    assert [layer["name"] for layer in doc["layers"]] == [
        "conv2d", "conv2d_1", "classification_head"
    ]
    bad = run_cli(capsys, "inspect", BY_NAME["cnn"].path, "--filter", "(")
    assert_one_line_error(bad, "--filter")


def test_layer_detail_has_config_and_weight_stats(capsys, keras):
    path = BY_NAME["nested"].path
    doc = json.loads(run_cli(capsys, "inspect", path, "--json", "--layer", "backbone/stem_bn").out)
    assert doc["config"]["epsilon"] == pytest.approx(0.001)
    model = keras.saving.load_model(path, compile=False)
    bn = model.get_layer("backbone").get_layer("stem_bn")
    expected = {w.name: w.numpy() for w in bn.weights}
    assert [w["name"] for w in doc["weights"]] == list(expected)
    for w in doc["weights"]:
        value = expected[w["name"]]
        assert w["min"] == pytest.approx(float(value.min()))
        assert w["max"] == pytest.approx(float(value.max()))
        assert w["mean"] == pytest.approx(float(value.mean()), abs=1e-6)
        assert w["trainable"] == (w["name"] in ("gamma", "beta"))
    table = run_cli(capsys, "inspect", path, "--layer", "backbone/stem_bn")
    assert "moving_variance" in table.out and "Config:" in table.out


def test_unknown_layer_suggests_close_names(capsys):
    result = run_cli(capsys, "inspect", BY_NAME["nested"].path, "--layer", "stem_bn")
    assert_one_line_error(result, "stem_bn", "did you mean", "backbone/stem_bn")
    typo = run_cli(capsys, "inspect", BY_NAME["cnn"].path, "--layer", "intermediate_dens")
    assert_one_line_error(typo, "intermediate_dense")


def test_help_lists_every_command_with_a_description(capsys):
    result = run_cli(capsys, "--help")
    assert result.code == 0
    import typer.main

    from keras_cut.cli.app import app

    group = typer.main.get_command(app)
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        summary = (command.callback.__doc__ or "").strip().split("\n")[0]
        assert summary and summary[:40] in " ".join(result.out.split()), name
        sub = run_cli(capsys, name, "--help")
        text = " ".join(sub.out.split())
        assert sub.code == 0 and f"Usage: keras-cut {name}" in text, name
        assert summary in text, name
        # every option the command takes is described in its help
        for param in group.commands[name].params:
            for opt in param.opts:
                if opt.startswith("--"):
                    assert opt in text, (name, opt)


def test_usage_errors_exit_2_on_one_line(capsys):
    assert_one_line_error(run_cli(capsys, "inspect"), "Missing argument")
    assert_one_line_error(run_cli(capsys, "inspect", "a", "b"), "unexpected extra argument")
    assert_one_line_error(run_cli(capsys, "inspect", "x.keras", "--depth", "-1"), "--depth")
    assert_one_line_error(run_cli(capsys, "nosuchcommand"), "nosuchcommand")
