"""Messages in the user's terms for the cases a new user hit (issue 17)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.cli_helpers import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def dict_model(tmp_path_factory, keras):
    """A dict-output model whose heads read a nested model with two outputs."""
    layers = keras.layers
    i = keras.Input((4,), name="bi")
    backbone = keras.Model(i, [layers.Dense(3, name="ba")(i), layers.Dense(2, name="bb")(i)],
                           name="backbone")
    x = keras.Input((4,), name="x")
    first, second = backbone(layers.Dense(4, name="pre")(x))
    model = keras.Model(x, {"first": layers.Dense(1, name="h1")(first),
                            "second": layers.Dense(1, name="h2")(second)})
    path = tmp_path_factory.mktemp("dict") / "dict_out.keras"
    model.save(path)
    return path


def test_a_head_of_a_dict_output_model_returns_the_dict(dict_model, tmp_path, capsys, keras):
    sub = tmp_path / "head.keras"
    assert run_cli(capsys, "cut", dict_model, "-o", sub, "--input-layer", "pre").code == 0
    parent = keras.saving.load_model(dict_model, compile=False)
    head = keras.saving.load_model(sub, compile=False)
    assert isinstance(head.output, dict) and sorted(head.output) == ["first", "second"]
    data = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    features = keras.Model(parent.input, parent.get_layer("pre").output).predict(data, verbose=0)
    expected, got = parent.predict(data, verbose=0), head.predict(features, verbose=0)
    for key in ("first", "second"):
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-6)
    assert run_cli(capsys, "verify", dict_model, sub).code == 0


def test_a_nested_model_with_two_outputs_keeps_both(dict_model, tmp_path, capsys):
    result = run_cli(capsys, "cut", dict_model, "-o", tmp_path / "b.keras", "--output-layer",
                     "backbone", "--json")
    assert result.code == 0, result.err
    assert [o["source"] for o in json.loads(result.out)["outputs"]] == ["backbone[0]",
                                                                        "backbone[1]"]
    result = run_cli(capsys, "cut", dict_model, "-o", tmp_path / "c.keras", "--output-layer",
                     "backbone[1]", "--json")
    assert [o["source"] for o in json.loads(result.out)["outputs"]] == ["backbone[1]"]


def test_no_output_layer_is_not_blamed_on_an_option_never_given(dict_model, tmp_path, capsys):
    result = run_cli(capsys, "cut", dict_model, "-o", tmp_path / "s.keras", "--input-layer",
                     "h1")
    assert_one_line_error(result, "model output 'h2'", "add --output-layer")
    assert "--output-layer 'h2'" not in result.err


def test_identity_cut_is_refused(dict_model, tmp_path, capsys):
    out = tmp_path / "s.keras"
    result = run_cli(capsys, "cut", dict_model, "-o", out, "--input-layer", "pre",
                     "--output-layer", "pre")
    assert_one_line_error(result, "same layer", "'pre'", "keep no layer")
    assert not out.exists()


def test_empty_filter_says_so(dict_model, capsys):
    result = run_cli(capsys, "inspect", dict_model, "--filter", "no_such_thing")
    assert_one_line_error(result, "--filter 'no_such_thing' matches no layer")


def test_convert_keeps_dict_inputs_and_outputs(tmp_path, capsys, keras):
    layers = keras.layers
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    joined = layers.Concatenate(name="join")([a, b])
    model = keras.Model({"a": a, "b": b}, {"y": layers.Dense(2, name="y")(joined),
                                           "z": layers.Dense(1, name="z")(joined)})
    path = tmp_path / "dicts.keras"
    model.save(path)
    for suffix in (".keras", ".h5"):
        out = tmp_path / f"converted{suffix}"
        assert run_cli(capsys, "convert", path, "-o", out).code == 0
        loaded = keras.saving.load_model(out, compile=False)
        data = {"a": np.ones((2, 3), "float32"), "b": np.full((2, 2), 0.5, "float32")}
        expected, got = model.predict(data, verbose=0), loaded.predict(data, verbose=0)
        if suffix == ".keras":  # .h5 (Keras' legacy format) keeps no dict structure
            assert isinstance(loaded.output, dict) and isinstance(loaded.input, dict)
            for key in ("y", "z"):
                np.testing.assert_allclose(got[key], expected[key], rtol=1e-6)
        assert run_cli(capsys, "verify", path, out).code == 0


@pytest.mark.parametrize("name", ["m.tflite", "m.onnx", "m.xml", "saved"])
def test_an_artifact_given_as_a_model_is_named_as_one(name, tmp_path, capsys):
    path = tmp_path / name
    if name == "saved":
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"\0")
    else:
        path.write_bytes(b"\0" * 16)
    for command in (["inspect", path], ["cut", path, "-o", tmp_path / "x.keras",
                                        "--output-layer", "a"]):
        assert_one_line_error(run_cli(capsys, *command), f"{path}: is an exported artifact",
                              "not a Keras model", "keras-cut verify PARENT ARTIFACT")
