"""Layer names as typed and printed: one parser and formatter, escapes for `@ / [ \\`, `[i]`
outputs, and names Keras allows that once could not be addressed."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keras_cut.model.names import NameSyntaxError, Segment, escape, format_name, parse_name
from tests.cli_helpers import assert_one_line_error, run_cli

names = st.text(alphabet=st.sampled_from("ab_1@/[]\\ .-"), min_size=1, max_size=8).filter(
    lambda n: n == n.strip())  # what a shell user types is stripped


@given(st.lists(st.tuples(names, st.one_of(st.none(), st.integers(0, 9))), min_size=1,
                max_size=3), st.one_of(st.none(), st.integers(0, 5)))
def test_every_printed_name_parses_back(parts, index):
    parsed = parse_name(format_name(parts, index))
    assert [(s.name, s.call) for s in parsed.segments] == parts
    assert parsed.index == index


def test_parse_examples():
    assert parse_name("backbone@1/conv").segments == (
        Segment("backbone", 1, literal="backbone@1"), Segment("conv"))
    assert parse_name("dense\\@1").segments == (Segment("dense@1"),)
    assert parse_name("lstm[2]").index == 2 and parse_name("lstm[2]").path == "lstm"
    assert escape("a/b@c[d\\") == "a\\/b\\@c\\[d\\\\"
    for bad in ("", "/", "a//b", "lstm[x]", "lstm]"):
        with pytest.raises(NameSyntaxError):
            parse_name(bad)


@pytest.fixture(scope="module")
def at_model(tmp_path_factory, keras):
    """A shared layer `dense` next to a layer named `dense@1`, a lone `enc@0`, an LSTM with
    states."""
    layers = keras.layers
    x = keras.Input((4,), name="x")
    shared = layers.Dense(3, name="dense")
    a = shared(x)
    b = shared(layers.Dense(4, name="pre")(a))
    c = layers.Dense(3, name="dense@1")(b)
    e = layers.Dense(3, name="enc@0")(c)
    states = layers.LSTM(2, return_state=True, name="lstm")(layers.Reshape((3, 1), name="r")(e))
    path = tmp_path_factory.mktemp("at") / "at.keras"
    keras.Model(x, [e, *states]).save(path)
    return path


def _cut(capsys, model, tmp_path, *names):
    args = [a for n in names for a in ("--output-layer", n)]
    result = run_cli(capsys, "cut", model, "-o", tmp_path / "s.keras", "--force", "--json", *args)
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_every_layer_can_be_addressed(at_model, tmp_path, capsys, keras):
    # `@N` is a call where the layer has one; the escaped form is the layer of that name
    assert _cut(capsys, at_model, tmp_path, "dense@1")["outputs"][0]["source"] == "dense@1"
    doc = _cut(capsys, at_model, tmp_path, "dense\\@1")
    assert doc["outputs"][0]["source"] == "dense\\@1" and doc["outputs"][0]["name"] == "dense@1"
    # no layer `enc`: `enc@0` is the layer named so (once "did you mean 'enc@0'?")
    assert _cut(capsys, at_model, tmp_path, "enc@0")["outputs"][0]["name"] == "enc@0"
    # inspect prints names the way they are typed
    table = run_cli(capsys, "inspect", at_model, "--columns", "connected").out
    assert "dense\\@1" in table and "enc\\@0" in table
    detail = json.loads(run_cli(capsys, "inspect", at_model, "--layer", "dense\\@1",
                                "--json").out)
    assert detail["name"] == "dense\\@1" and detail["inbound"] == ["dense@1"]


def test_one_output_of_several(tmp_path, capsys, keras):
    import numpy as np

    # (TensorFlow cannot run a model with `@` in a layer name: its scope names refuse it)
    x = keras.Input((3, 1), name="x")
    states = keras.layers.LSTM(2, return_state=True, name="lstm")(x)
    at_model = tmp_path / "lstm.keras"
    keras.Model(x, [keras.layers.Dense(1, name="head")(states[0]), *states]).save(at_model)
    doc = _cut(capsys, at_model, tmp_path, "lstm[2]")
    assert [o["source"] for o in doc["outputs"]] == ["lstm[2]"]
    parent = keras.saving.load_model(at_model, compile=False)
    sub = keras.saving.load_model(tmp_path / "s.keras", compile=False)
    data = np.random.default_rng(0).normal(size=(5, 3, 1)).astype("float32")
    np.testing.assert_allclose(sub.predict(data, verbose=0), parent.predict(data, verbose=0)[3],
                               rtol=1e-6, atol=1e-6)  # the cell state, Keras' own output 3
    assert_one_line_error(run_cli(capsys, "cut", at_model, "-o", tmp_path / "t.keras",
                                  "--output-layer", "lstm[3]"), "3 output(s)", "from 0")
    # two outputs of one call are two tensors; the same tensor twice is refused
    both = run_cli(capsys, "cut", at_model, "-o", tmp_path / "u.keras", "--output-layer",
                   "lstm[1]", "--output-layer", "lstm[2]", "--json")
    assert both.code == 0, both.err
    assert [o["source"] for o in json.loads(both.out)["outputs"]] == ["lstm[1]", "lstm[2]"]
    sub = keras.saving.load_model(tmp_path / "u.keras", compile=False)
    got = sub.predict(data, verbose=0)
    want = parent.predict(data, verbose=0)
    for value, expected in zip(got, want[2:], strict=True):
        np.testing.assert_allclose(value, expected, rtol=1e-6, atol=1e-6)
    assert_one_line_error(run_cli(capsys, "cut", at_model, "-o", tmp_path / "v.keras",
                                  "--output-layer", "lstm", "--output-layer", "lstm[1]"),
                          "given twice")


def test_did_you_mean_never_repeats_the_input(at_model, tmp_path, capsys):
    result = run_cli(capsys, "cut", at_model, "-o", tmp_path / "t.keras", "--output-layer",
                     "enc")
    assert_one_line_error(result, "no layer 'enc'", "enc\\@0")
    result = run_cli(capsys, "cut", at_model, "-o", tmp_path / "t.keras", "--output-layer",
                     "lsmt")
    assert_one_line_error(result, "'lstm'")
    assert "'lsmt'?" not in result.err
