"""`keras-cut diff`: each kind of change is found and named, nothing is reported for identical
files, and exit codes follow `diff` (0 same, 1 different, 2 error). Expected numbers come from
the arrays themselves (h5py/NumPy), never from keras-cut."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from keras_cut.cut.cutting import cut_model
from sample_models.registry import BY_NAME
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.corpus import rezip


def diff(capsys, a, b, *args):
    result = run_cli(capsys, "diff", a, b, "--json", *args)
    assert result.code in (0, 1), result.err
    return result.code, json.loads(result.out)


def build(keras, *, units=16, activation="relu", head="head", extra=False, size=12):
    L = keras.layers
    inp = keras.Input((size, size, 3), name="image")
    x = L.Conv2D(8, 3, activation="relu", name="conv")(inp)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(units, activation=activation, name="fc")(x)
    if extra:
        x = L.Dense(units, name="extra")(x)
    return keras.Model(inp, L.Dense(3, name=head)(x), name="model")


@pytest.fixture(scope="module")
def variants(tmp_path_factory, keras):
    """One base model and variants sharing its arrays wherever the layers correspond."""
    d = tmp_path_factory.mktemp("diff")
    keras.utils.set_random_seed(5)
    base = build(keras)
    out = {"base": d / "base.keras"}
    base.save(out["base"])
    base.save(d / "base.h5")
    out["base_h5"] = d / "base.h5"
    for name, kwargs in [("activation", {"activation": "tanh"}), ("renamed", {"head": "logits"}),
                         ("extra", {"extra": True}), ("input", {"size": 16})]:
        model = build(keras, **kwargs)
        for layer in model.layers:
            source = {"logits": "head"}.get(layer.name, layer.name)
            if source in [x.name for x in base.layers] and layer.weights:
                layer.set_weights(base.get_layer(source).get_weights())
        out[name] = d / f"{name}.keras"
        model.save(out[name])
    return out


def test_identical_files(variants, capsys):
    code, doc = diff(capsys, variants["base"], variants["base"])
    assert code == 0 and doc["identical"] is True
    assert doc["layers"] == [] and doc["endpoints"] == [] and doc["arrays_compared"] == 6
    result = run_cli(capsys, "diff", variants["base"], variants["base"])
    assert result.code == 0 and result.out.splitlines()[-1].startswith("IDENTICAL")


def test_h5_and_keras_of_one_model(variants, capsys):
    code, doc = diff(capsys, variants["base_h5"], variants["base"])
    assert code == 0, doc["layers"]
    assert any("formats differ" in note for note in doc["notes"])


def test_nudged_weight(variants, tmp_path, capsys):
    def nudge(h5):
        group = next(g for g in h5["layers"].values() if g["vars"].attrs.get("name") == "fc")
        value = group["vars/0"][...]
        value[1, 2] += 0.25
        value[0, 0] -= 0.5
        group["vars/0"][...] = value

    bad = rezip(tmp_path / "nudged.keras", variants["base"], weights=nudge)
    code, doc = diff(capsys, variants["base"], bad)
    assert code == 1
    [layer] = doc["layers"]
    assert layer["path"] == "fc" and layer["status"] == "changed" and layer["config"] == []
    [weight] = layer["weights"]
    assert weight["name"] == "kernel" and weight["status"] == "values"
    assert weight["max_abs_diff"] == pytest.approx(0.5, rel=1e-6)
    assert weight["changed_fraction"] == pytest.approx(2 / (8 * 16))
    assert weight["mean_abs_diff"] == pytest.approx(0.75 / (8 * 16), rel=1e-5)
    assert diff(capsys, variants["base"], bad, "--structure-only")[0] == 0
    assert diff(capsys, variants["base"], bad, "--atol", "0.6")[0] == 0
    assert diff(capsys, variants["base"], bad, "--atol", "0.3")[0] == 1
    text = run_cli(capsys, "diff", variants["base"], bad)
    assert "kernel float32[8, 16]: values differ (max abs 0.5" in text.out
    assert text.out.splitlines()[-1].startswith("DIFFERENT: 1 changed, 1 array(s) differ")


def test_changed_activation(variants, capsys):
    code, doc = diff(capsys, variants["base"], variants["activation"])
    assert code == 1
    [layer] = doc["layers"]
    assert layer["path"] == "fc" and layer["weights"] == []
    assert layer["config"] == [{"field": "activation", "old": "relu", "new": "tanh",
                               "kind": "behaviour"}]


def test_renamed_layer(variants, capsys):
    code, doc = diff(capsys, variants["base"], variants["renamed"])
    assert code == 1
    [layer] = doc["layers"]
    assert (layer["path"], layer["new_path"], layer["status"]) == ("head", "logits", "renamed")
    assert layer["weights"] == [] and layer["config"] == []
    assert doc["endpoints"] == []  # the output is the same layer, renamed


def test_extra_layer(variants, capsys):
    code, doc = diff(capsys, variants["base"], variants["extra"])
    assert code == 1
    by_path = {layer["path"]: layer for layer in doc["layers"]}
    assert by_path["extra"]["status"] == "added"
    assert by_path["head"]["connections"] == {"old": "fc", "new": "extra"}
    assert doc["totals"]["params"]["new"] - doc["totals"]["params"]["old"] == 16 * 16 + 16


def test_changed_input_shape(variants, capsys):
    code, doc = diff(capsys, variants["base"], variants["input"])
    assert code == 1
    assert doc["endpoints"] == [{"kind": "input", "old": "image (None, 12, 12, 3) float32",
                                 "new": "image (None, 16, 16, 3) float32"}]
    [layer] = doc["layers"]
    assert layer["path"] == "image"
    assert layer["config"][0]["field"].startswith("batch_shape")


def test_cut_against_its_parent(tmp_path, capsys):
    parent = BY_NAME["nested"].path
    sub = tmp_path / "stem.keras"
    cut_model(parent, sub, ["backbone/stem_bn", "pool"], [])
    code, doc = diff(capsys, parent, sub)
    assert code == 1 and any("was cut from" in note for note in doc["notes"])
    by_path = {layer["path"]: layer for layer in doc["layers"]}
    assert by_path["backbone/stem_conv"]["new_path"] == "stem_conv"
    assert by_path["classifier"]["status"] == "removed"
    assert all(not layer["weights"] for layer in doc["layers"])  # every kept array identical
    assert doc["arrays_compared"] > 0
    code, doc = diff(capsys, sub, parent)  # the other way round
    assert {layer["path"]: layer["status"] for layer in doc["layers"]}["classifier"] == "added"


def test_tf_keras_2_file_against_its_keras_3_conversion(legacy_dir, tmp_path, capsys, keras):
    legacy = legacy_dir / "cnn.h5"
    converted = tmp_path / "cnn.keras"
    keras.saving.load_model(legacy, compile=False).save(converted)
    code, doc = diff(capsys, legacy, converted)
    assert doc["arrays_compared"] == 6
    assert all(not layer["weights"] for layer in doc["layers"]), doc["layers"]
    assert any("tf.keras 2" in note for note in doc["notes"])
    assert code == 0, doc["layers"]


def test_errors_are_one_line(variants, tmp_path, capsys):
    (tmp_path / "junk.keras").write_bytes(b"not a model")
    assert_one_line_error(run_cli(capsys, "diff", variants["base"], tmp_path / "junk.keras"),
                          "junk.keras")
    assert_one_line_error(run_cli(capsys, "diff", variants["base"], tmp_path / "none.keras"),
                          "none.keras")
    copy = shutil.copy(variants["base"], tmp_path / "copy.keras")
    with h5py.File(variants["base_h5"], "r") as h5:  # sanity: the fixture wrote real arrays
        assert np.asarray(h5["model_weights/fc/fc/kernel"]).shape == (8, 16)
    assert diff(capsys, copy, variants["base"])[0] == 0
