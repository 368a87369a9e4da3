"""`diff` as a CI gate: two files that differ in anything Keras reads are DIFFERENT (exit 1),
each difference classified (behaviour, safety, metadata, bits) so that `--ignore KIND` can let
a kind through; every case has its twin that stays IDENTICAL. Each changed file is a copy
edited by hand (config.json, the weight h5, the zip), never written by keras-cut."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from tests.verify.test_verify_awkward import edit, layer_config


def diff(capsys, a, b, *args):
    result = run_cli(capsys, "diff", a, b, "--json", *args)
    assert result.code in (0, 1), result.err
    return result.code, json.loads(result.out)


@pytest.fixture(scope="module")
def base(tmp_path_factory, keras):
    d = tmp_path_factory.mktemp("diff_gate")
    keras.utils.set_random_seed(7)
    L = keras.layers
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    e = L.Embedding(30, 8, name="embed")(tokens)
    att = L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(e, e, use_causal_mask=True)
    h = L.Dropout(0.1, name="drop")(att)
    h = L.Dense(4, activation="relu", name="fc")(L.GlobalAveragePooling1D(name="gp")(h))
    model = keras.Model(tokens, L.Dense(2, name="head")(h), name="model")
    model.compile(optimizer="sgd", loss="mse")
    model.save(d / "base.keras")
    return d / "base.keras"


def edited(src, dst, change=None, weights=None, extra=None):
    def config(c):
        change(c)
        return c
    path = edit(src, dst, config=config if change else None, weights=weights)
    if extra:
        with zipfile.ZipFile(path, "a") as zf:
            for name, data in extra.items():
                zf.writestr(name, data)
    return path


def weight_group(h5, name):
    return next(g for g in h5["layers"].values()
                if "vars" in g and g["vars"].attrs.get("name") == name)


def set_first(name, value):
    def change(h5):
        dataset = weight_group(h5, name)["vars/0"]
        array = dataset[...]
        array.flat[0] = value
        dataset[...] = array
    return change


def test_a_copy_is_identical(base, tmp_path, capsys):
    code, doc = diff(capsys, base, shutil.copy(base, tmp_path / "copy.keras"))
    assert code == 0 and doc["identical"] and doc["files"] == [] and doc["layers"] == []


def test_call_arguments(base, tmp_path, capsys):
    def no_mask(c):
        del layer_config(c, "mha")["inbound_nodes"][0]["kwargs"]["use_causal_mask"]

    code, doc = diff(capsys, base, edited(base, tmp_path / "m.keras", no_mask))
    assert code == 1
    [layer] = doc["layers"]
    assert layer["path"] == "mha" and layer["kinds"] == ["behaviour"]
    assert layer["call_arguments"] == [{"field": "call 0: kwargs.use_causal_mask", "old": True,
                                        "new": "(absent)", "kind": "behaviour"}]

    def training(c):
        layer_config(c, "drop")["inbound_nodes"][0]["kwargs"]["training"] = True

    result = run_cli(capsys, "diff", base, edited(base, tmp_path / "t.keras", training))
    assert result.code == 1 and "call 0: kwargs.training: false -> true" in result.out


def test_where_a_class_comes_from(base, tmp_path, capsys):
    def evil(c):
        layer_config(c, "fc")["module"] = "evil.layers"
        layer_config(c, "fc")["registered_name"] = "Evil>Dense"

    code, doc = diff(capsys, base, edited(base, tmp_path / "e.keras", evil))
    assert code == 1
    [layer] = doc["layers"]
    assert {(c["field"], c["new"], c["kind"]) for c in layer["config"]} == {
        ("module", "evil.layers", "safety"), ("registered_name", "Evil>Dense", "safety")}
    assert diff(capsys, base, tmp_path / "e.keras", "--ignore", "safety")[0] == 0
    assert diff(capsys, base, tmp_path / "e.keras", "--ignore", "metadata")[0] == 1


def test_arrays_outside_any_layer(base, tmp_path, capsys):
    def payload(h5):
        h5["hidden/payload"] = np.arange(4)

    bad = edited(base, tmp_path / "p.keras", weights=payload)
    code, doc = diff(capsys, base, bad)
    assert code == 1
    assert doc["files"] == [{"what": "array hidden/payload", "old": None, "new": "present",
                             "kind": "safety"}]
    result = run_cli(capsys, "inspect", bad)
    assert "arrays no layer accounts for (hidden/payload)" in result.out
    assert "arrays no layer" not in run_cli(capsys, "inspect", base).out  # optimizer state

    def other_payload(h5):
        h5["hidden/payload"] = np.arange(4) + 1

    code, doc = diff(capsys, bad, edited(base, tmp_path / "q.keras", weights=other_payload))
    assert code == 1 and doc["files"][0]["what"] == "array hidden/payload"


def test_everything_else_in_the_file(base, tmp_path, capsys):
    def rename(c):
        c["config"]["name"] = "other"

    code, doc = diff(capsys, base, edited(base, tmp_path / "n.keras", rename))
    assert code == 1 and doc["files"] == [{"what": "model.name", "old": "model", "new": "other",
                                           "kind": "metadata"}]
    assert diff(capsys, base, tmp_path / "n.keras", "--ignore", "metadata")[0] == 0

    def compile_config(c):
        c["compile_config"]["loss"] = "mae"

    code, doc = diff(capsys, base, edited(base, tmp_path / "c.keras", compile_config))
    assert code == 1 and [f["what"] for f in doc["files"]] == ["model.compile_config.loss"]
    assert doc["files"][0]["kind"] == "metadata"

    code, doc = diff(capsys, base, edited(base, tmp_path / "z.keras",
                                          extra={"assets/evil.py": b"print('hi')"}))
    assert code == 1 and doc["files"][0]["what"] == "member assets/evil.py"
    assert doc["files"][0]["kind"] == "safety"
    result = run_cli(capsys, "diff", base, tmp_path / "z.keras")
    assert "member assets/evil.py: (none) -> 11 bytes" in result.out


def test_signed_zero_is_a_bit_pattern_only(base, tmp_path, capsys):
    zero = edited(base, tmp_path / "zero.keras", weights=set_first("head", 0.0))
    minus = edited(base, tmp_path / "minus.keras", weights=set_first("head", -0.0))
    code, doc = diff(capsys, zero, minus)
    assert code == 1
    [weight] = doc["layers"][0]["weights"]
    assert weight["status"] == "bits" and weight["kind"] == "bits"
    assert diff(capsys, zero, minus, "--ignore", "bits")[0] == 0
    assert diff(capsys, zero, zero)[0] == 0


def test_nan_and_inf_are_counted_never_hidden(base, tmp_path, capsys):
    nan = edited(base, tmp_path / "nan.keras", weights=set_first("head", np.nan))
    code, doc = diff(capsys, base, nan)
    assert code == 1
    [weight] = doc["layers"][0]["weights"]
    assert weight["nan"] == 1 and weight["inf"] == 0
    assert weight["max_abs_diff"] == 0.0 and weight["mean_abs_diff"] == 0.0
    assert diff(capsys, base, nan, "--atol", "1e6")[0] == 1  # no tolerance hides a NaN
    inf = edited(base, tmp_path / "inf.keras", weights=set_first("head", np.inf))
    code, doc = diff(capsys, nan, inf)
    assert code == 1 and doc["layers"][0]["weights"][0]["nan"] == 1
    assert diff(capsys, nan, shutil.copy(nan, tmp_path / "nan2.keras"))[0] == 0


def test_tolerances_must_be_finite_and_not_negative(base, capsys):
    for value in ("nan", "inf", "-1"):
        assert_one_line_error(run_cli(capsys, "diff", base, base, "--atol", value), "--atol")
    assert_one_line_error(run_cli(capsys, "diff", base, base, "--ignore", "colour"), "--ignore")


def test_one_extra_array_in_a_layer_is_one_array_added(base, tmp_path, capsys):
    def extra(h5):
        group = weight_group(h5, "fc")
        group["vars/2"] = np.zeros(3, np.float32)

    code, doc = diff(capsys, base, edited(base, tmp_path / "x.keras", weights=extra))
    assert code == 1
    [layer] = doc["layers"]
    assert [(w["status"]) for w in layer["weights"]] == ["added"]


def test_one_spelling_for_an_activation(base, tmp_path, capsys):
    def spelled(c):
        layer_config(c, "fc")["config"]["activation"] = {
            "module": "keras.activations", "class_name": "function", "config": "relu",
            "registered_name": "relu"}

    code, doc = diff(capsys, base, edited(base, tmp_path / "s.keras", spelled))
    assert code == 0, doc["layers"]

    def relu6(c):
        layer_config(c, "fc")["config"]["activation"] = "relu6"

    code, doc = diff(capsys, base, edited(base, tmp_path / "r.keras", relu6))
    assert code == 1 and doc["layers"][0]["config"][0]["field"] == "activation"


def test_an_unknown_shape_is_not_a_difference():
    from keras_cut.diff.diffing import _same_endpoint

    assert _same_endpoint(("x", (None, None, 16), "float32"), ("x", None, "float32"))
    assert _same_endpoint(("x", (None, 4), None), ("x", (None, 4), "float32"))
    assert not _same_endpoint(("x", (None, 4), "float32"), ("x", (None, 5), "float32"))
    assert not _same_endpoint(("x", (None, 4), "float32"), ("y", (None, 4), "float32"))


def test_a_custom_class_origin_left_out_is_a_difference(base, tmp_path, capsys):
    """Without `module`/`registered_name`, Keras resolves the class name to its own class."""
    def custom(c):
        layer_config(c, "fc")["module"] = "mypkg.layers"
        layer_config(c, "fc")["registered_name"] = "MyPkg>Dense"

    def bare(c):
        del layer_config(c, "fc")["module"]
        del layer_config(c, "fc")["registered_name"]

    code, doc = diff(capsys, edited(base, tmp_path / "c.keras", custom),
                     edited(base, tmp_path / "b.keras", bare))
    assert code == 1 and {c["field"] for c in doc["layers"][0]["config"]} == {
        "module", "registered_name"}
    assert diff(capsys, base, tmp_path / "b.keras")[0] == 0  # Keras' own class either way


def test_an_absent_field_is_the_default_not_null(base, tmp_path, capsys):
    def null_axis(c):
        layer_config(c, "gp")["config"]["keepdims"] = None

    code, doc = diff(capsys, base, edited(base, tmp_path / "n.keras", null_axis))
    assert code == 1 and doc["layers"][0]["config"][0]["field"] == "keepdims"

    def no_field(c):
        del layer_config(c, "gp")["config"]["keepdims"]

    assert diff(capsys, base, edited(base, tmp_path / "a.keras", no_field))[0] == 1


def test_one_keras_3_model_as_keras_and_h5_is_identical(tmp_path, capsys, keras):
    """Found by a review: `.h5` leaves out module/registered_name (a nested Functional, the Add
    that `y + y` makes) and names MultiHeadAttention's arrays its own way."""
    i = keras.Input((5, 4), name="i")
    inner = keras.Model(i, keras.layers.Dense(3, name="d")(i), name="enc")
    x = keras.Input((5, 4), name="x")
    y = inner(x)
    y = y + y
    att = keras.layers.MultiHeadAttention(2, 4, name="mha")(y, y)
    model = keras.Model(x, att)
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    code, doc = diff(capsys, tmp_path / "m.keras", tmp_path / "m.h5")
    assert code == 0, (doc["layers"], doc["files"])
    assert doc["arrays_compared"] == 10


def test_a_conversion_is_identical_to_its_source(tmp_path, capsys):
    from sample_models.registry import BY_NAME

    converted = tmp_path / "cnn.keras"
    assert run_cli(capsys, "convert", BY_NAME["cnn_h5"].path, "-o", converted).code == 0
    code, doc = diff(capsys, BY_NAME["cnn_h5"].path, converted)
    assert code == 0, (doc["layers"], doc["files"])


def test_a_head_cut_input_is_not_its_namesake_layer(base, tmp_path, capsys):
    from keras_cut.cut.cutting import cut_model

    head = tmp_path / "head.keras"
    cut_model(base, head, [], ["fc"])
    code, doc = diff(capsys, base, head)
    assert code == 1
    by_path = {layer["path"]: layer for layer in doc["layers"]}
    assert by_path["fc"]["status"] == "removed" and by_path["fc"]["config"] == []
    assert [layer["class_name"] for layer in doc["layers"] if layer["status"] == "added"] == \
        ["InputLayer"]
