"""`cut` on models nobody here wrote and on awkward features: subclassed models and list-held
sublayers kept whole, clashing names, composite layers, ConvNeXt's constant Normalization,
--freeze through nested models, and `cut --verify` never leaving an unproven file."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest

from keras_cut.cut.cutting import cut_model
from tests import custom_layers
from tests.cli_helpers import ROOT, Result, run_cli
from tests.cut.test_cut import all_layers, check_cut
from tests.keras_reference import activations, parse_source, random_inputs


def save(model, path):
    model.save(path)
    return path


@pytest.fixture(scope="module")
def awkward(tmp_path_factory, keras):
    """Models with the features the old rebuild-and-save cut got wrong."""
    d = tmp_path_factory.mktemp("awkward")
    keras.utils.set_random_seed(3)
    L = keras.layers
    models = {}

    x = keras.Input((8,), name="x")
    h = L.Dense(8, name="pre")(x)
    t = custom_layers.Tower(6, name="tower")(h)
    s = custom_layers.Stack(5, name="stack")(t)
    models["custom"] = save(keras.Model(x, L.Dense(3, name="head")(s)), d / "custom.keras")

    # A nested model whose layer names clash with the outer model's ("conv", "add").
    b_in = keras.Input((10, 10, 3), name="b_in")
    c = L.Conv2D(4, 3, padding="same", name="conv")(b_in)
    inner = keras.Model(b_in, L.Add(name="add")([c, L.Conv2D(4, 1, name="proj")(b_in)]),
                        name="backbone")
    img = keras.Input((10, 10, 3), name="image")
    y = inner(img)
    y = L.Conv2D(4, 3, padding="same", name="conv")(y)
    y = L.Add(name="add")([y, L.Conv2D(4, 1, name="skip")(img)])
    models["clash"] = save(keras.Model(img, L.GlobalAveragePooling2D(name="gap")(y)),
                           d / "clash.keras")

    tokens = keras.Input((6,), dtype="int32", name="tokens")
    e = L.Embedding(1000, 8, mask_zero=True, name="embed")(tokens)
    a = L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(e, e)
    r = L.Add(name="residual")([a, e])
    bi = L.Bidirectional(L.LSTM(5, return_sequences=True), name="bilstm")(r)
    seq, state = L.GRU(4, return_state=True, name="gru")(bi)
    models["text"] = save(keras.Model(tokens, L.Dense(2, name="out")(L.Concatenate(
        name="cat")([seq, state]))), d / "text.keras")

    models["convnext"] = save(keras.applications.ConvNeXtTiny(
        input_shape=(32, 32, 3), weights=None, classes=4), d / "convnext.keras")
    return models


def test_subclassed_model_and_list_sublayers_kept_whole(awkward, tmp_path, keras):
    """Kept whole, bit for bit (the rebuild gave the Tower fresh random weights and failed on
    the list): the reference is the parent's own outputs."""
    out = tmp_path / "s.keras"
    result = cut_model(awkward["custom"], out, ["stack"], ["pre"])
    assert [t.name for t in result.inputs] == ["pre"]
    parent = keras.saving.load_model(awkward["custom"], compile=False)
    sub = keras.saving.load_model(out, compile=False)
    data = random_inputs(parent, batch=4, seed=0)
    record = activations(parent, data)
    np.testing.assert_array_equal(np.asarray(sub(record[("pre", 0)][0])),
                                  record[("stack", 0)][0])
    for name in ("tower", "stack"):  # inner names are generated anew on each load: by order
        mine, theirs = sub.get_layer(name), parent.get_layer(name)
        assert len(mine.weights) == len(theirs.weights) > 0
        for a, b in zip(mine.weights, theirs.weights, strict=True):
            assert np.asarray(a.numpy()).tobytes() == np.asarray(b.numpy()).tobytes(), a.path
    cut_h5 = run_cli_cut(tmp_path / "s.h5", awkward["custom"], "--output-layer", "stack")
    assert cut_h5.code == 2 and "write the submodel as .keras" in cut_h5.err


def run_cli_cut(out, model, *args):
    proc = subprocess.run([sys.executable, "-m", "keras_cut", "cut", str(model), "-o", str(out),
                           *args], capture_output=True, text=True, cwd=ROOT, timeout=120)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def test_clashing_names_are_renamed(awkward, tmp_path, keras):
    out = tmp_path / "c.keras"
    result = cut_model(awkward["clash"], out, ["gap"], ["backbone/conv"])
    assert result.notices and any("'backbone/add'" in n and "named" in n for n in result.notices)
    parent = keras.saving.load_model(awkward["clash"], compile=False)
    sub = keras.saving.load_model(out, compile=False)
    data = random_inputs(parent, batch=3, seed=1)
    record = activations(parent, data)
    feed = [data[0] if t.role == "parent_input" else record[parse_source(t.source)[:2]][0]
            for t in result.inputs]
    assert [t.source for t in result.inputs] == ["backbone/conv", "backbone/proj", "skip"]
    got = sub(feed)
    np.testing.assert_allclose(np.asarray(got), record[("gap", 0)][0], rtol=1e-5, atol=1e-6)
    names = [layer.name for layer in sub.layers]
    assert len(names) == len(set(names)) and "backbone_add" in names


def test_composite_layers_and_rnn_states(awkward, tmp_path, keras):
    for outputs, inputs in ((["gru"], []), (["out"], ["residual"]), (["bilstm"], ["mha"])):
        check_cut(keras, awkward["text"], tmp_path / "t.keras", outputs, inputs, force=True)
    refused = run_cli_cut(tmp_path / "t.h5", awkward["text"], "--output-layer", "residual")
    assert refused.code == 2 and "'mha'" in refused.err and "as .keras" in refused.err
    assert not (tmp_path / "t.h5").exists()


@pytest.mark.heavy  # a real ConvNeXt
def test_convnext_normalization_with_constants(awkward, tmp_path, keras):
    """ConvNeXt's Normalization(mean=..., variance=...) stores no arrays: not "damaged"."""
    check_cut(keras, awkward["convnext"], tmp_path / "a.keras",
              [_layer_at(keras, awkward["convnext"], 0.4)], [])
    check_cut(keras, awkward["convnext"], tmp_path / "b.keras", [],
              [_layer_at(keras, awkward["convnext"], 0.6)])


def _layer_at(keras, path, fraction):
    model = keras.saving.load_model(path, compile=False)
    return model.layers[int(len(model.layers) * fraction)].name


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_freeze_reaches_nested_models(ext, tmp_path, keras, app_dir):
    """Every kept config, nested ones included, says trainable: false."""
    out = tmp_path / f"f{ext}"
    result, sub = check_cut(keras, app_dir / "wrapped_mobilenet.keras", out, ["head"], [],
                            freeze=True)
    assert result.trainable_params == 0 and not sub.trainable_weights
    assert sub.count_params() == keras.saving.load_model(
        app_dir / "wrapped_mobilenet.keras", compile=False).count_params()
    assert all(not layer.trainable for _, layer in all_layers(sub)
               if not isinstance(layer, keras.layers.InputLayer))


def test_cut_verify_never_leaves_an_unproven_file(tmp_path, capsys, monkeypatch):
    """A submodel that verify rejects is not put at OUTPUT; it is kept under the name given."""
    import keras_cut.cut.cutting as cutting
    from sample_models.registry import BY_NAME

    real = cutting.write_submodel

    def nudged(parent, sub, path, fmt, record, freeze):
        real(parent, sub, path, fmt, record, freeze)
        with h5py.File(path, "a") as h5:  # .h5 output: nudge one kept array
            kernel = h5["model_weights/res_c/res_c/kernel"]
            kernel[0, 0, 0, 0] += 0.5

    monkeypatch.setattr(cutting, "write_submodel", nudged)
    out = tmp_path / "head.h5"
    result = run_cli(capsys, "cut", BY_NAME["residual"].path, "-o", out, "--input-layer",
                     "res_b", "--verify")
    assert result.code == 1, result.err
    assert not out.exists()
    kept = tmp_path / "head.unverified.h5"
    assert kept.exists() and str(kept) in result.err and "FAILED" in result.out
    monkeypatch.setattr(cutting, "write_submodel", real)
    good = run_cli(capsys, "cut", BY_NAME["residual"].path, "-o", out, "--input-layer", "res_b",
                   "--verify")
    assert good.code == 0 and out.exists(), good.err


def test_dict_inputs_and_a_nested_model_called_twice(tmp_path, keras):
    """Outputs that are a whole call of a nested Functional model: Keras numbers those calls
    from 1 in output_layers (from 0 everywhere else); written from 0, the second call's output
    silently became the first's (found as a new user would: an error of 0.76, exit 0)."""
    L = keras.layers
    keras.utils.set_random_seed(5)
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    h = L.Concatenate(name="cat")([L.Dense(5, name="da")(a), L.Dense(5, name="db")(b)])
    enc_in = keras.Input((10,), name="enc_in")
    enc = keras.Model(enc_in, L.Dense(6, name="e1")(enc_in), name="enc")
    y1 = enc(h)
    y2 = enc(L.Dense(10, name="mid")(h))
    path = save(keras.Model({"a": a, "b": b}, {"y1": y1, "y2": L.Dense(2, name="out")(y2)}),
                tmp_path / "dict.keras")
    parent = keras.saving.load_model(path, compile=False)
    rng = np.random.default_rng(0)
    data = {"a": rng.random((3, 4), "float32"), "b": rng.random((3, 3), "float32")}
    probe = keras.Model(parent.inputs, [parent.get_layer("cat").output,
                                        parent.get_layer("out").input])
    cat, second = (np.asarray(t) for t in probe(data))
    first = np.asarray(parent(data)["y1"])
    for outputs, inputs, feed, want in (
        (["enc@1"], ["cat"], cat, [second]),
        (["enc@1/e1"], ["cat"], cat, [second]),
        (["enc@0", "enc@1"], [], [data["a"], data["b"]], [first, second]),
    ):
        out = tmp_path / "sub.keras"
        cut_model(path, out, outputs, inputs, force=True)
        got = keras.saving.load_model(out, compile=False)(feed)
        got = got if isinstance(got, (list, tuple)) else [got]
        for value, expected in zip(got, want, strict=True):
            np.testing.assert_allclose(np.asarray(value), expected, rtol=1e-6, atol=1e-6,
                                       err_msg=str(outputs))
