"""`verify` passes on real cuts and — the point of it — fails on every kind of wrong submodel."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from keras_cut.cut.cutting import cut_model
from keras_cut.verify.verification import verify_models
from sample_models.registry import BY_NAME
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.corpus import rezip

pytestmark = pytest.mark.heavy  # runs models through TensorFlow (make test-fast skips it)

PASS_CASES = [
    ("cnn", ["intermediate_dense"], []),
    ("cnn", [], ["intermediate_dense"]),
    ("cnn_h5", ["flatten"], ["max_pooling2d"]),
    ("text", [], ["embedding_layer"]),
    ("two_heads", ["regression_output", "classification_output"], []),
    ("nested", ["backbone/block/block_bn"], ["backbone/stem_conv"]),
    ("nested", [], ["backbone/stem_relu"]),
    ("residual", [], ["res_b"]),
    ("sequential", [], ["seq_dropout"]),
    ("shared", [], ["shared_dense@0"]),
    ("shared", ["shared_dense@1"], []),
]


@pytest.mark.parametrize("sample,outputs,inputs", PASS_CASES,
                         ids=[f"{s}:{'+'.join(o) or 'end'}<-{'+'.join(i) or 'inputs'}"
                              for s, o, i in PASS_CASES])
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_real_cuts_pass(sample, outputs, inputs, suffix, tmp_path, capsys):
    sub = tmp_path / f"sub{suffix}"
    cut_model(BY_NAME[sample].path, sub, outputs, inputs)
    result = run_cli(capsys, "verify", BY_NAME[sample].path, sub, "--samples", "8")
    assert result.code == 0, result.out + result.err
    assert "PASSED" in result.out.splitlines()[-1]


@pytest.mark.parametrize("name,outputs,inputs", [
    ("resnet50", [], ["conv4_block4_1_conv"]),
    ("wrapped_mobilenet", ["backbone/block_13_expand"], []),
    ("wrapped_mobilenet", [], ["backbone/block_6_project_BN"]),
])
def test_application_cuts_pass(name, outputs, inputs, app_dir, tmp_path):
    sub = tmp_path / "sub.keras"
    cut_model(app_dir / f"{name}.keras", sub, outputs, inputs)
    report = verify_models(app_dir / f"{name}.keras", sub, samples=4, batch_size=2)
    assert report.passed, report.to_dict()
    assert report.weights.checked > 0


def test_cut_verify_in_one_process(tmp_path, capsys):
    result = run_cli(capsys, "cut", BY_NAME["nested"].path, "-o", tmp_path / "s.keras",
                     "--input-layer", "backbone/stem_relu", "--verify", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["verify"]["passed"] is True and doc["verify"]["weights"]["mismatched"] == []


# --- broken submodels must fail -----------------------------------------------------------


def rewrite_keras(src, dst, config=None, weights=None):
    """Copy a .keras file, editing config.json (a dict function) and/or the weight h5."""
    replace = {}
    if config:
        replace["config.json"] = json.dumps(config(json.loads(zipfile.ZipFile(src).read(
            "config.json"))))
    return rezip(dst, src, replace=replace, weights=weights)


@pytest.fixture
def cnn_cut(tmp_path):
    sub = tmp_path / "good.keras"
    cut_model(BY_NAME["cnn"].path, sub, ["intermediate_dense"], [])
    return sub


def find_layer(config, name):
    return next(layer for layer in config["config"]["layers"] if layer["name"] == name)


def test_nudged_weight_fails_and_is_named(cnn_cut, tmp_path, capsys):
    def nudge(h5):
        group = next(g for g in h5["layers"].values() if g["vars"].attrs.get("name") == "conv2d_1")
        kernel = group["vars/0"]
        value = kernel[...]
        value.flat[0] += 0.05
        kernel[...] = value

    bad = rewrite_keras(cnn_cut, tmp_path / "nudged.keras", weights=nudge)
    result = run_cli(capsys, "verify", BY_NAME["cnn"].path, bad)
    assert result.code == 1, result.err
    assert "FAILED" in result.out.splitlines()[-1]
    assert "conv2d_1/kernel: differs" in result.out


def test_changed_activation_fails_with_identical_weights(cnn_cut, tmp_path, capsys):
    def linear(config):
        find_layer(config, "intermediate_dense")["config"]["activation"] = "linear"
        return config

    bad = rewrite_keras(cnn_cut, tmp_path / "linear.keras", config=linear)
    result = run_cli(capsys, "verify", BY_NAME["cnn"].path, bad, "--json")
    assert result.code == 1
    doc = json.loads(result.out)
    assert doc["passed"] is False and doc["outputs"][0]["passed"] is False
    assert doc["outputs"][0]["max_abs_error"] > 1e-3
    assert doc["weights"]["mismatched"] == [] and doc["weights"]["checked"] > 0


def test_dtype_change_fails(cnn_cut, tmp_path, capsys):
    def half(config):
        find_layer(config, "intermediate_dense")["config"]["dtype"] = {
            "module": "keras", "class_name": "DTypePolicy",
            "config": {"name": "mixed_float16"}, "registered_name": None,
        }
        return config

    bad = rewrite_keras(cnn_cut, tmp_path / "half.keras", config=half)
    result = run_cli(capsys, "verify", BY_NAME["cnn"].path, bad, "--json", "--atol", "1",
                     "--rtol", "1")
    assert result.code == 1
    output = json.loads(result.out)["outputs"][0]
    assert output["dtype"] == "float16" and output["parent_dtype"] == "float32"
    assert "dtype" in output["problem"]


def test_wrong_correspondence_fails(tmp_path, capsys):
    """A submodel fed from the wrong parent layer must not pass (the record says res_a)."""
    sub = tmp_path / "head.keras"
    cut_model(BY_NAME["residual"].path, sub, [], ["res_c"])

    with zipfile.ZipFile(sub) as zf:
        record = json.loads(zf.read("keras_cut.json"))
    assert record["inputs"][0]["tensor"] == {"calls": [["res_c", 0]], "index": 0}
    record["inputs"][0]["source"] = "res_a"  # res_c's output is claimed to be res_a's
    record["inputs"][0]["tensor"] = {"calls": [["res_a", 0]], "index": 0}
    swapped = tmp_path / "swapped.keras"
    with zipfile.ZipFile(sub) as zin, zipfile.ZipFile(swapped, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            zout.writestr(info.filename,
                          json.dumps(record) if info.filename == "keras_cut.json" else data)
    assert run_cli(capsys, "verify", BY_NAME["residual"].path, sub).code == 0
    assert run_cli(capsys, "verify", BY_NAME["residual"].path, swapped).code == 1


def test_unrelated_model_is_an_error(cnn_cut, capsys):
    result = run_cli(capsys, "verify", BY_NAME["residual"].path, cnn_cut)
    assert_one_line_error(result, "cut from this parent")


def test_tolerance_decides(cnn_cut, tmp_path, capsys):
    def tiny(h5):
        group = next(g for g in h5["layers"].values()
                     if g["vars"].attrs.get("name") == "intermediate_dense")
        bias = group["vars/1"]
        bias[...] = bias[...] + np.float32(1e-3)

    bad = rewrite_keras(cnn_cut, tmp_path / "tiny.keras", weights=tiny)
    strict = json.loads(run_cli(capsys, "verify", BY_NAME["cnn"].path, bad, "--json").out)
    assert strict["outputs"][0]["passed"] is False
    loose = json.loads(run_cli(capsys, "verify", BY_NAME["cnn"].path, bad, "--json",
                               "--atol", "0.01").out)
    assert loose["outputs"][0]["passed"] is True
    assert loose["passed"] is False  # the weight check still catches the change


# --- inputs --------------------------------------------------------------------------------


def test_same_seed_same_report(cnn_cut, tmp_path):
    def tiny(h5):
        group = next(g for g in h5["layers"].values()
                     if g["vars"].attrs.get("name") == "intermediate_dense")
        group["vars/1"][...] = group["vars/1"][...] + np.float32(1e-3)

    bad = rewrite_keras(cnn_cut, tmp_path / "tiny.keras", weights=tiny)
    a = verify_models(BY_NAME["cnn"].path, bad, samples=8, seed=3).to_dict()
    b = verify_models(BY_NAME["cnn"].path, bad, samples=8, seed=3).to_dict()
    c = verify_models(BY_NAME["cnn"].path, bad, samples=8, seed=4).to_dict()
    assert a == b
    assert a["outputs"][0]["mean_abs_error"] != c["outputs"][0]["mean_abs_error"]


def test_integer_inputs_stay_inside_the_vocabulary(tmp_path, keras):
    from keras_cut.model.flatgraph import FlatGraph
    from keras_cut.model.opening import open_model
    from keras_cut.verify.feeds import parent_data as _parent_data

    inp = keras.Input((40,), dtype="int32", name="ids")
    x = keras.layers.Embedding(7, 3, name="emb")(inp)
    out = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    keras.Model(inp, out).save(tmp_path / "small_vocab.keras")
    _, graph = open_model(tmp_path / "small_vocab.keras")
    data = _parent_data(FlatGraph(graph), graph, 64, 0, None, {}, [])
    assert data["ids"].dtype == np.int32
    assert data["ids"].min() >= 0 and data["ids"].max() == 6  # all of [0, 7) is used
    cut_model(tmp_path / "small_vocab.keras", tmp_path / "sub.keras", [], ["emb"])
    assert verify_models(tmp_path / "small_vocab.keras", tmp_path / "sub.keras").passed


def test_given_inputs(cnn_cut, tmp_path, capsys):
    rng = np.random.default_rng(1)
    good = tmp_path / "x.npz"
    np.savez(good, image=rng.uniform(0, 1, (5, 28, 28, 3)).astype("float32"))
    result = run_cli(capsys, "verify", BY_NAME["cnn"].path, cnn_cut, "--inputs", good, "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["samples"] == 5 and doc["seed"] is None
    cases = [
        ({"img": np.zeros((2, 28, 28, 3), "float32")}, ["named after", "image"]),
        ({"image": np.zeros((2, 28, 28), "float32")}, ["shape"]),
        ({"image": np.zeros((2, 28, 28, 3), "complex64")}, ["complex64"]),
    ]
    for i, (arrays, words) in enumerate(cases):
        path = tmp_path / f"bad{i}.npz"
        np.savez(path, **arrays)
        assert_one_line_error(run_cli(capsys, "verify", BY_NAME["cnn"].path, cnn_cut,
                                      "--inputs", path), "--inputs", *words)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    assert_one_line_error(run_cli(capsys, "verify", BY_NAME["cnn"].path, cnn_cut, "--inputs",
                                  tmp_path / "junk.npz"), "--inputs")


def test_bad_options_are_usage_errors(cnn_cut, capsys):
    parent = BY_NAME["cnn"].path
    for args, words in [
        (["--samples", "0"], ["--samples"]),
        (["--samples", "-3"], ["--samples"]),
        (["--batch-size", "0"], ["--batch-size"]),
        (["--input-shape", "image=a,b"], ["--input-shape"]),
        (["--input-shape", "nosuch=1,2,3"], ["nosuch"]),
        (["--input-shape", "image=28,28"], ["does not fit"]),
        (["--atol", "-1"], ["--atol"]),
    ]:
        assert_one_line_error(run_cli(capsys, "verify", parent, cnn_cut, *args), *words)


def test_unknown_dimensions_use_input_shape(tmp_path, keras, capsys):
    inp = keras.Input((None, 4), name="seq")
    out = keras.layers.Dense(2, name="d")(keras.layers.Dense(3, name="h")(inp))
    keras.Model(inp, out).save(tmp_path / "var.keras")
    cut_model(tmp_path / "var.keras", tmp_path / "sub.keras", [], ["h"])
    default = run_cli(capsys, "verify", tmp_path / "var.keras", tmp_path / "sub.keras")
    assert default.code == 0 and "Notice: input 'seq' has unknown dimensions" in default.err
    given = run_cli(capsys, "verify", tmp_path / "var.keras", tmp_path / "sub.keras",
                    "--input-shape", "seq=11,4")
    assert given.code == 0 and "Notice" not in given.err


def test_cut_verify_names_the_users_output_when_keras_cannot_load_it(tmp_path, capsys,
                                                                     monkeypatch):
    """`cut --verify` checks a temporary file; an error loading it names the user's OUTPUT."""
    from keras_cut.backend.keras import saved
    from keras_cut.core.errors import LoadError

    real = saved.load_saved_model

    def refuse_submodel(model_file, *args):
        if ".partial" in str(model_file.path):
            raise LoadError(f"{model_file.path}: Keras could not load the model (test)")
        return real(model_file, *args)

    monkeypatch.setattr(saved, "load_saved_model", refuse_submodel)
    out = tmp_path / "features.keras"
    result = run_cli(capsys, "cut", BY_NAME["cnn"].path, "-o", out, "--output-layer",
                     "intermediate_dense", "--verify")
    assert_one_line_error(result, str(out), "could not load")
    assert "partial" not in result.err
