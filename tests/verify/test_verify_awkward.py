"""verify on the model kinds that once fooled it, each as a pair: the correct cut PASSES and a
deliberately broken one FAILS (exit 1) naming what differs. Plus golden files, per-output
tolerances and the first-divergence report.

Every broken submodel is made by editing a correct one's file (config or weights), never by
keras-cut, and the reference numbers come from Keras itself (tests/keras_reference)."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest

from keras_cut.cut.cutting import cut_model
from sample_models.registry import BY_NAME
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.corpus import rezip
from tests.cut.test_cut_models import save

pytestmark = pytest.mark.heavy  # runs models through TensorFlow (make test-fast skips it)


@pytest.fixture(scope="module")
def models(tmp_path_factory, keras):
    d = tmp_path_factory.mktemp("verify_awkward")
    keras.utils.set_random_seed(11)
    L = keras.layers
    m = {}

    # dict inputs whose config order (b, a) differs from Keras' flattening order (a, b)
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    s = L.Subtract(name="sub")([L.Dense(3, name="da")(a), L.Dense(3, name="db")(b)])
    m["dict"] = save(keras.Model({"b": b, "a": a}, L.Dense(2, name="out")(s)), d / "dict.keras")
    a, b = keras.Input((4,), name="a"), keras.Input((6,), name="b")
    ha = L.Dense(3, name="da")(a)
    s = L.Subtract(name="sub")([ha, L.Dense(3, name="db")(b)])
    m["dict_shapes"] = save(keras.Model({"b": b, "a": a}, {"y": L.Dense(2, name="out")(s),
                                                             "z": ha}), d / "dict_shapes.keras")

    tokens = keras.Input((6,), dtype="int32", name="tokens")
    e = L.Embedding(1000, 8, mask_zero=True, name="embed")(tokens)
    r = L.Add(name="residual")([L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(e, e),
                                e])
    bi = L.Bidirectional(L.LSTM(5, return_sequences=True), name="bilstm")(r)
    seq, state = L.GRU(4, return_sequences=True, return_state=True, name="gru")(bi)
    out = L.Dense(2, name="out")(L.Concatenate(name="cat")(
        [L.GlobalAveragePooling1D(name="gp")(seq), state]))
    m["text"] = save(keras.Model(tokens, out), d / "text.keras")

    x = keras.Input((5, 3), name="x")
    h, h_state, c_state = L.LSTM(4, return_state=True, name="lstm")(x)
    m["states"] = save(keras.Model(x, L.Dense(1, name="head")(
        L.Concatenate(name="cat")([h, h_state, c_state]))), d / "states.keras")

    e_in = keras.Input((5,), name="e_in")
    encoder = keras.Model(e_in, L.Dense(4, name="e_dense")(e_in), name="encoder")
    x1, x2 = keras.Input((5,), name="x1"), keras.Input((5,), name="x2")
    joined = L.Concatenate(name="cat")([encoder(x1), encoder(x2)])
    m["twice"] = save(keras.Model([x1, x2], L.Dense(1, name="head")(joined)), d / "twice.keras")

    b_in = keras.Input((10, 10, 3), name="b_in")
    inner = keras.Model(b_in, L.Add(name="add")([
        L.Conv2D(4, 3, padding="same", name="conv")(b_in), L.Conv2D(4, 1, name="proj")(b_in)]),
        name="backbone")
    img = keras.Input((10, 10, 3), name="image")
    y = L.Conv2D(4, 3, padding="same", name="conv")(inner(img))
    y = L.Add(name="add")([y, L.Conv2D(4, 1, name="skip")(img)])
    m["clash"] = save(keras.Model(img, L.GlobalAveragePooling2D(name="gap")(y)),
                      d / "clash.keras")
    return m


def edit(src, dst, config=None, weights=None, record=None):
    """A copy of a .keras file with config.json, the weights or keras-cut's record edited."""
    with zipfile.ZipFile(src) as zf:
        replace = {}
        if config:
            replace["config.json"] = json.dumps(config(json.loads(zf.read("config.json"))))
        if record:
            replace["keras_cut.json"] = json.dumps(record(json.loads(zf.read("keras_cut.json"))))
    return rezip(dst, src, replace=replace, weights=weights)


def layer_config(config, name):
    return next(layer for layer in config["config"]["layers"] if layer["name"] == name)


def nudge(group_path, index=0, by=0.05):
    def change(h5):
        dataset = h5[f"{group_path}/vars/{index}"]
        value = dataset[...]
        value.flat[0] += by
        dataset[...] = value
    return change


def verify(capsys, parent, sub, *args):
    result = run_cli(capsys, "verify", parent, sub, "--samples", "8", "--json", *args)
    assert result.code in (0, 1), result.err
    return result.code, json.loads(result.out)


def cut(parent, tmp_path, name, outputs=(), inputs=()):
    out = tmp_path / f"{name}.keras"
    cut_model(parent, out, list(outputs), list(inputs))
    return out


# --- the pairs -------------------------------------------------------------------------------


def test_dict_inputs_fed_by_name(models, tmp_path, capsys):
    good = cut(models["dict"], tmp_path, "head", ["out"])
    assert verify(capsys, models["dict"], good)[0] == 0

    def swap(config):  # da now reads b and db reads a: same shapes, wrong wiring
        da, db = layer_config(config, "da"), layer_config(config, "db")
        da["inbound_nodes"], db["inbound_nodes"] = db["inbound_nodes"], da["inbound_nodes"]
        return config

    bad = edit(good, tmp_path / "swapped.keras", config=swap)
    code, doc = verify(capsys, models["dict"], bad)
    assert code == 1 and doc["outputs"][0]["passed"] is False
    assert doc["weights"]["mismatched"] == []
    assert doc["divergence"]["layer"] in ("da", "db")


def test_dict_inputs_of_different_shapes_and_dict_outputs(models, tmp_path, capsys):
    good = cut(models["dict_shapes"], tmp_path, "mid", ["sub", "da"])
    code, doc = verify(capsys, models["dict_shapes"], good)
    assert code == 0, doc
    rng = np.random.default_rng(0)
    data = tmp_path / "real.npz"
    np.savez(data, a=rng.normal(size=(5, 4)).astype("float32"),
             b=rng.normal(size=(5, 6)).astype("float32"))
    code, doc = verify(capsys, models["dict_shapes"], good, "--inputs", data)
    assert code == 0 and doc["samples"] == 5


def test_composite_layer_weights_matched_by_full_path(models, tmp_path, capsys):
    good = cut(models["text"], tmp_path, "enc", ["bilstm"])
    code, doc = verify(capsys, models["text"], good)
    assert code == 0, doc["weights"]
    assert doc["weights"]["checked"] >= 15  # embedding, 8 in MHA, 6 in the Bidirectional LSTM

    # A key bias shifts every score of a query equally: softmax hides it, the outputs agree,
    # and only the weight check can say "not fine".
    bad = edit(good, tmp_path / "key_bias.keras",
               weights=nudge("layers/multi_head_attention/key_dense", index=1))
    code, doc = verify(capsys, models["text"], bad)
    assert code == 1 and doc["outputs"][0]["passed"] is True and doc["divergence"] is None
    assert [w.split(":")[0] for w in doc["weights"]["mismatched"]] == ["mha/key_dense/bias"]

    bad = edit(good, tmp_path / "value_kernel.keras",
               weights=nudge("layers/multi_head_attention/value_dense", index=0))
    code, doc = verify(capsys, models["text"], bad)
    assert code == 1 and doc["outputs"][0]["passed"] is False
    assert [w.split(":")[0] for w in doc["weights"]["mismatched"]] == ["mha/value_dense/kernel"]
    assert doc["divergence"]["layer"] == "mha" and doc["divergence"]["max_abs_error"] > 0

    bad = edit(good, tmp_path / "nudged_lstm.keras",
               weights=nudge("layers/bidirectional/backward_layer/cell", index=1, by=2.0))
    code, doc = verify(capsys, models["text"], bad)
    assert code == 1
    assert doc["weights"]["mismatched"][0].startswith("bilstm/backward_layer/cell/recurrent")
    assert doc["divergence"]["layer"] == "bilstm"


def test_each_output_of_a_multi_output_layer(models, tmp_path, capsys):
    good = cut(models["text"], tmp_path, "gru", ["gru"])
    code, doc = verify(capsys, models["text"], good)
    assert code == 0, doc
    assert [o["source"] for o in doc["outputs"]] == ["gru[0]", "gru[1]"]

    states = cut(models["states"], tmp_path, "states", ["lstm"])
    assert verify(capsys, models["states"], states)[0] == 0

    def wrong_tensor(config):  # output 1 (h) now reads the cell state c: same shape
        config["config"]["output_layers"][1][2] = 2
        return config

    bad = edit(states, tmp_path / "wrong.keras", config=wrong_tensor)
    code, doc = verify(capsys, models["states"], bad)
    assert code == 1
    assert [o["passed"] for o in doc["outputs"]] == [True, False, True]
    assert doc["outputs"][1]["source"] == "lstm[1]"
    assert doc["divergence"]["layer"] is None  # every layer agrees: the output is mis-taken
    assert "other tensors" in doc["divergence"]["problem"]


def test_nested_model_call_and_parent_input_as_outputs(models, tmp_path, capsys):
    good = cut(models["twice"], tmp_path, "enc1", ["encoder@1"])
    code, doc = verify(capsys, models["twice"], good)
    assert code == 0, doc
    assert doc["outputs"][0]["source"] == "encoder@1"

    def other_call(record):  # claim it is the first call (fed by x1, not x2)
        record["outputs"][0]["source"] = "encoder@0"
        record["outputs"][0]["tensor"]["calls"][0][1] = 0
        return record

    bad = edit(good, tmp_path / "call0.keras", record=other_call)
    assert verify(capsys, models["twice"], bad)[0] == 1

    both = cut(models["twice"], tmp_path, "passthrough", ["x1", "head"])
    code, doc = verify(capsys, models["twice"], both)
    assert code == 0 and [o["source"] for o in doc["outputs"]] == ["x1", "head"]


def test_clashing_names(models, tmp_path, capsys):
    good = cut(models["clash"], tmp_path, "after", inputs=["backbone"])
    assert verify(capsys, models["clash"], good)[0] == 0
    opened = cut(models["clash"], tmp_path, "opened", ["gap"], ["backbone/conv"])
    code, doc = verify(capsys, models["clash"], opened)
    assert code == 0, doc

    def relu(config):  # the outer conv, identical weights, another activation
        layer_config(config, "conv")["config"]["activation"] = "relu"
        return config

    bad = edit(good, tmp_path / "relu.keras", config=relu)
    code, doc = verify(capsys, models["clash"], bad)
    assert code == 1 and doc["weights"]["mismatched"] == []
    assert doc["divergence"]["layer"] == "conv" and doc["divergence"]["parent_layer"] == "conv"


def test_unmappable_submodel_is_an_error_not_a_pass(models, tmp_path, capsys):
    good = cut(models["twice"], tmp_path, "enc1", ["encoder@1"])
    no_record = rezip(tmp_path / "norecord.keras", good, drop=("keras_cut.json",))
    result = run_cli(capsys, "verify", models["twice"], no_record)
    assert_one_line_error(result, "norecord.keras", "'encoder'", "called several times")


# --- tolerances ------------------------------------------------------------------------------


def test_per_output_tolerance_flips_one_verdict(tmp_path, capsys):
    parent = BY_NAME["two_heads"].path
    good = cut(parent, tmp_path, "heads", ["regression_output", "classification_output"])
    bad = edit(good, tmp_path / "bias.keras", weights=_shift_bias)
    code, strict = verify(capsys, parent, bad)
    verdicts = {o["name"]: o["passed"] for o in strict["outputs"]}
    assert code == 1 and verdicts == {"regression_output": False, "classification_output": True}
    code, loose = verify(capsys, parent, bad, "--atol", "regression_output=0.01")
    verdicts = {o["name"]: o for o in loose["outputs"]}
    assert verdicts["regression_output"]["passed"] and verdicts["regression_output"]["atol"] == 0.01
    assert verdicts["classification_output"]["atol"] == 1e-5
    assert code == 1  # the changed bias is still a weight difference
    out = verdicts["regression_output"]
    assert 0 < out["median_abs_error"] <= out["max_abs_error"] <= 0.0011
    assert 0.99 < out["cosine_similarity"] <= 1.0
    assert_one_line_error(run_cli(capsys, "verify", parent, bad, "--atol", "nosuch=1"),
                          "--atol", "nosuch", "regression_output")
    assert_one_line_error(run_cli(capsys, "verify", parent, bad, "--rtol", "x=-1"), "--rtol")


def _shift_bias(h5):
    group = next(g for g in h5["layers"].values()
                 if g["vars"].attrs.get("name") == "regression_output")
    group["vars/1"][...] = group["vars/1"][...] + np.float32(1e-3)


# --- golden files ----------------------------------------------------------------------------


def test_golden_round_trip_without_the_parent(models, tmp_path, capsys, monkeypatch):
    parent = shutil.copy(models["text"], tmp_path / "parent.keras")
    good = cut(parent, tmp_path, "enc", ["bilstm"])
    golden = tmp_path / "enc.golden.npz"
    result = run_cli(capsys, "verify", parent, good, "--samples", "6", "--save-golden", golden)
    assert result.code == 0 and golden.exists() and "golden file written" in result.err
    again = run_cli(capsys, "verify", parent, good, "--save-golden", golden)
    assert_one_line_error(again, "already exists", "--force")
    bad = edit(good, tmp_path / "nudged.keras",
               weights=nudge("layers/multi_head_attention/value_dense", by=0.5))
    other = cut(parent, tmp_path, "gru", ["gru"])
    (tmp_path / "parent.keras").unlink()  # proves the check never opens the parent

    def no_parent(*args, **kwargs):
        raise AssertionError("the parent was loaded")

    monkeypatch.setattr("keras_cut.backend.keras.saved.load_saved_model", no_parent)
    code, doc = verify(capsys, golden, good)
    assert code == 0, doc
    assert doc["golden"] == str(golden) and doc["samples"] == 6 and doc["seed"] == 0
    assert doc["weights"]["against"] == "golden file" and doc["weights"]["checked"] >= 15
    code, doc = verify(capsys, golden, bad)
    assert code == 1 and doc["outputs"][0]["passed"] is False
    assert doc["weights"]["mismatched"][0].startswith("mha/value_dense/kernel")
    assert_one_line_error(run_cli(capsys, "verify", golden, other), "outputs", "golden file")


def test_golden_file_errors(models, tmp_path, capsys):
    good = cut(models["dict"], tmp_path, "head", ["out"])
    junk = tmp_path / "junk.npz"
    np.savez(junk, x=np.zeros(3))
    result = run_cli(capsys, "verify", junk, good)
    assert result.code == 2 and "Error:" in result.err
    golden = tmp_path / "g.npz"
    assert run_cli(capsys, "verify", models["dict"], good, "--save-golden", golden).code == 0
    assert_one_line_error(run_cli(capsys, "verify", models["dict"], good, "--save-golden",
                                  tmp_path / "g.txt"), "g.txt", ".npz")
    assert_one_line_error(run_cli(capsys, "verify", golden, good, "--save-golden",
                                  tmp_path / "h.npz"), "--save-golden")


# --- found by trying it as a new user ---------------------------------------------------------


def test_unnamed_weights_matched_by_position(tmp_path, capsys, keras):
    """Keras names unnamed weights anew on each load (`variable_18`): ConvNeXt's LayerScale."""
    model = keras.applications.ConvNeXtTiny(input_shape=(32, 32, 3), weights=None, classes=4)
    path = save(model, tmp_path / "convnext.keras")
    code, doc = verify(capsys, path, path)
    assert code == 0, doc["weights"]["mismatched"][:3]
    sub = cut(path, tmp_path, "stage0", ["convnext_tiny_stage_0_block_2_identity"])
    code, doc = verify(capsys, path, sub)
    assert code == 0, doc["weights"]["mismatched"][:3]
    assert doc["weights"]["checked"] > 20


def test_nested_dict_outputs_in_keras_order(tmp_path, capsys, keras):
    """A nested model's dict outputs are numbered in sorted-key order, as Keras flattens them."""
    L = keras.layers
    ia, ib = keras.Input((4,), name="in_a"), keras.Input((4,), name="in_b")
    h = L.Dense(3, name="h")(L.Concatenate(name="join")([L.Dense(4, name="pre_a")(ia),
                                                         L.Dense(4, name="pre_b")(ib)]))
    enc = keras.Model({"zz": ia, "aa": ib}, {"out_y": L.Dense(2, name="c")(h),
                                             "out_x": L.Dense(2, name="d",
                                                              activation="tanh")(h)}, name="enc")
    p, q = keras.Input((4,), name="p"), keras.Input((4,), name="q")
    out = enc({"zz": p, "aa": q})
    parent = save(keras.Model([p, q], [L.Dense(1, name="head_y")(out["out_y"]),
                                       L.Dense(1, name="head_x")(out["out_x"])]),
                  tmp_path / "ndict.keras")
    rng = np.random.default_rng(0)
    x = [rng.uniform(-1, 1, (5, 4)).astype("float32") for _ in range(2)]
    loaded = keras.saving.load_model(parent, compile=False)
    want = {k: np.asarray(v) for k, v in loaded.get_layer("enc")({"zz": x[0], "aa": x[1]}).items()}
    for i, (outputs, inputs) in enumerate(((["enc"], []), (["enc/c", "head_x"], []),
                                           (["head_x"], ["enc/pre_b"]), ([], ["enc"]))):
        sub = cut(parent, tmp_path, f"sub{i}", outputs, inputs)
        code, doc = verify(capsys, parent, sub)
        assert code == 0, (outputs, inputs, doc["divergence"])
    sub = cut(parent, tmp_path, "both", ["enc"])
    got = [np.asarray(v) for v in keras.saving.load_model(sub, compile=False)(x)]
    np.testing.assert_allclose(got[0], want["out_x"], atol=1e-6)  # sorted: out_x, out_y
    np.testing.assert_allclose(got[1], want["out_y"], atol=1e-6)


def test_integer_ids_reaching_an_embedding_through_other_layers(tmp_path, capsys, keras):
    L = keras.layers
    ids = keras.Input((12,), dtype="int32", name="ids")
    e = L.Embedding(30, 4, name="emb")(L.Reshape((3, 4), name="reshape")(ids))
    path = save(keras.Model(ids, L.Dense(2, name="out")(L.Flatten(name="flat")(e))),
                tmp_path / "reshaped.keras")
    assert verify(capsys, path, path)[0] == 0  # ids drawn inside [0, 30)
    doubled = L.Add(name="twice")([ids, ids])  # ids pass a layer that changes them
    e = L.Embedding(30, 4, name="emb")(doubled)
    path = save(keras.Model(ids, L.Flatten(name="flat")(e)), tmp_path / "doubled.keras")
    result = run_cli(capsys, "verify", path, path)
    assert_one_line_error(result, "doubled.keras", "could not run", "--inputs")
