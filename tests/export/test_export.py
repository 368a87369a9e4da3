"""`export`: the cut as a LiteRT, ONNX, OpenVINO or SavedModel artifact, proven in its own
runtime.

Every expected value comes from Keras itself (the parent's activations, computed in the test)
and every artifact is run here through its runtime's own API, not keras-cut's runner."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from keras_cut.core.errors import ArtifactError, UsageError
from keras_cut.cut.cutting import cut_model
from keras_cut.export.exporting import export_model
from keras_cut.verify.verification import verify_models
from sample_models.registry import BY_NAME
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.export.artifacts import SUFFIXES, run_artifact, tamper
from tests.keras_reference import activations, random_inputs

pytestmark = pytest.mark.heavy
pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed "
                    "(pip install 'keras-cut[litert]'; it is in the dev extras)")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed "
                    "(pip install 'keras-cut[onnx]'; it is in the dev extras)")
pytest.importorskip("openvino", reason="openvino is not installed "
                    "(pip install 'keras-cut[openvino]'; it is in the dev extras)")
RUNTIMES = {".tflite": "LiteRT", ".onnx": "ONNX Runtime", ".xml": "OpenVINO Runtime",
            "": "TensorFlow (tf.saved_model)"}

RESIDUAL = BY_NAME["residual"].path


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_head_with_a_crossing_input_is_exported_and_proven(suffix, tmp_path, capsys, keras):
    out = tmp_path / f"head{suffix}"
    result = run_cli(capsys, "export", RESIDUAL, "-o", out, "--input-layer", "res_b", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["proven"] is True and doc["verify"]["passed"] is True
    assert doc["runtime"].startswith(RUNTIMES[suffix])
    assert {(i["name"], i["source"], i["kind"]) for i in doc["inputs"]} == {
        ("res_b", "res_b", "cut_input"), ("res_a", "res_a", "crossing")}
    assert [o["source"] for o in doc["outputs"]] == ["res_out"]
    # the artifact's own shapes: the batch left open, the rest fixed
    assert [i["shape"] for i in doc["inputs"]] == [[None, 16, 16, 8]] * 2
    assert [o["shape"] for o in doc["outputs"]] == [[None, 3]]
    # the artifact computes what the parent computes after res_b, on a batch of 5 (not 8)
    parent = keras.saving.load_model(RESIDUAL, compile=False)
    data = random_inputs(parent, batch=5, seed=3)
    record = activations(parent, data)
    feed = {"res_b": record[("res_b", 0)][0], "res_a": record[("res_a", 0)][0]}
    (got,) = run_artifact(out, feed)
    np.testing.assert_allclose(got, record[("res_out", 0)][0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_prefix_of_mobilenet_is_proven(suffix, app_dir, tmp_path, capsys, keras):
    out = tmp_path / f"features{suffix}"
    layer = "block_3_expand_relu"
    result = run_cli(capsys, "export", app_dir / "mobilenetv2.keras", "-o", out,
                     "--output-layer", layer, "--samples", "8")
    assert result.code == 0, result.err
    assert f"proven in {RUNTIMES[suffix]}" in " ".join(result.out.split())
    parent = keras.saving.load_model(app_dir / "mobilenetv2.keras", compile=False)
    data = np.random.default_rng(1).uniform(-1, 1, (3, 96, 96, 3)).astype("float32")
    want = keras.Model(parent.inputs, parent.get_layer(layer).output)(data)  # the seed recipe
    (got,) = run_artifact(out, {parent.inputs[0].name: data})
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_dict_inputs_and_outputs_keep_their_names(suffix, tmp_path, capsys, keras):
    layers = keras.layers
    # each key is the other input's layer name (OpenVINO names an input by its key: a new
    # user's correct IR was "proven" with its inputs swapped)
    a, b = keras.Input((8,), name="in_a"), keras.Input((4,), name="in_b")
    s = layers.Add(name="add")([layers.Dense(6, name="da")(a), layers.Dense(6, name="db")(b)])
    model = keras.Model({"in_b": a, "in_a": b}, {"first": layers.Dense(2, name="o1")(s),
                                                 "second": layers.Dense(3, name="o2")(s)})
    path = tmp_path / "dict.keras"
    model.save(path)
    out = tmp_path / f"dict{suffix}"
    result = run_cli(capsys, "export", path, "-o", out, "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert [o["source"] for o in doc["outputs"]] == ["o1", "o2"]
    if suffix != ".xml":  # OpenVINO names such an output by the converter's tensor name
        assert [o["name"] for o in doc["outputs"]] == ["first", "second"]
    a_data, b_data = np.ones((2, 8), "float32"), np.full((2, 4), 0.5, "float32")
    by_source = {i["source"]: i["name"] for i in doc["inputs"]}
    assert set(by_source) == {"in_a", "in_b"}
    # whatever the artifact calls them, its inputs stand for the right tensors
    feed = {by_source["in_a"]: a_data, by_source["in_b"]: b_data}
    want = model({"in_b": a_data, "in_a": b_data})
    # every format names an input after its layer
    assert all(i["name"] == i["source"] for i in doc["inputs"])
    first, second = run_artifact(out, feed)
    np.testing.assert_allclose(first, np.asarray(want["first"]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(second, np.asarray(want["second"]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_tampered_artifact_fails_its_proof(suffix, tmp_path):
    cut = tmp_path / "head.keras"
    cut_model(RESIDUAL, cut, input_layers=["res_b"])
    good = export_model(RESIDUAL, tmp_path / f"good{suffix}", input_layers=["res_b"],
                        verify=False)
    assert good.proven is None
    artifact = tmp_path / f"good{suffix}"
    fmt = good.format
    assert verify_models(RESIDUAL, cut, artifact=(artifact, fmt)).passed
    tamper(artifact, RESIDUAL, "res_out")
    report = verify_models(RESIDUAL, cut, artifact=(artifact, fmt))
    assert not report.passed and not report.outputs[0].passed


@pytest.mark.parametrize("suffix", [".onnx", ".xml", ""])
def test_an_artifact_that_differs_is_not_left_at_output(suffix, tmp_path, capsys, monkeypatch):
    from keras_cut.backend.keras import exporting

    real = exporting.export_file

    def export_then_tamper(model_path, target, fmt, *args, **kwargs):
        order = real(model_path, target, fmt, *args, **kwargs)
        tamper(target, RESIDUAL, "res_out")
        return order

    monkeypatch.setattr(exporting, "export_file", export_then_tamper)
    out = tmp_path / f"head{suffix}"
    result = run_cli(capsys, "export", RESIDUAL, "-o", out, "--input-layer", "res_b")
    assert result.code == 1
    assert not out.exists()
    kept = tmp_path / f"head.unproven{suffix}"
    assert kept.exists() and f"kept as {kept}" in " ".join(result.err.split())
    assert "DIFFERS" in result.out and "FAILED" in result.out
    # nothing else is left: no temporary file, an IR's .bin beside its .xml
    left = {p.name for p in tmp_path.iterdir()}
    assert left == ({"head.unproven.xml", "head.unproven.bin"} if suffix == ".xml"
                    else {kept.name})


def test_a_missing_runtime_is_one_line_naming_the_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    out = tmp_path / "head.tflite"
    result = run_cli(capsys, "export", RESIDUAL, "-o", out, "--input-layer", "res_b")
    assert_one_line_error(result, "ai_edge_litert", "pip install 'keras-cut[litert]'")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_names_and_formats_are_checked_before_any_work(tmp_path, capsys):
    assert_one_line_error(run_cli(capsys, "export", RESIDUAL, "-o", tmp_path / "m.pb"),
                          ".tflite (litert)", ".onnx (onnx)")
    assert_one_line_error(run_cli(capsys, "export", RESIDUAL, "-o", tmp_path / "m.onnx",
                                  "--format", "litert"), "*.tflite")
    assert_one_line_error(run_cli(capsys, "export", RESIDUAL, "-o", tmp_path / "m.onnx",
                                  "--output-layer", "nope"), "--output-layer 'nope'")
    existing = tmp_path / "there.onnx"
    existing.write_bytes(b"keep me")
    assert_one_line_error(run_cli(capsys, "export", RESIDUAL, "-o", existing), "--force")
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(UsageError):
        export_model(RESIDUAL, tmp_path / "x.onnx", format="openvino")
    assert ArtifactError.exit_code == 2


@pytest.fixture(scope="module")
def awkward(tmp_path_factory, keras):
    """An LSTM/GRU stack, a MultiHeadAttention block, and the nested sample."""
    layers, d = keras.layers, tmp_path_factory.mktemp("awkward")
    x = keras.Input((6, 4), name="seq")
    h = layers.LSTM(5, return_sequences=True, name="lstm")(x)
    keras.Model(x, layers.Dense(2, name="out")(layers.GRU(3, name="gru")(h))).save(d / "rnn.keras")
    q = keras.Input((5, 8), name="tokens")
    a = layers.MultiHeadAttention(2, 4, name="mha")(q, q)
    n = layers.LayerNormalization(name="ln")(layers.Add(name="res")([q, a]))
    keras.Model(q, layers.GlobalAveragePooling1D(name="pool")(n)).save(d / "mha.keras")
    return d


def _check_against_keras(keras, parent_path, artifact, inputs_from, output_layer, batch=3):
    """The artifact fed the parent's activations at `inputs_from` (name -> parent layer), its
    output against the parent's at `output_layer`: all computed by Keras here."""
    parent = keras.saving.load_model(parent_path, compile=False)
    data = random_inputs(parent, batch=batch, seed=5)
    record = activations(parent, data)
    for kt, value in zip(parent.inputs, data, strict=True):  # the parent's own inputs
        record[(kt.name, 0)] = [value]
    feed = {name: record[(layer, 0)][0] for name, layer in inputs_from.items()}
    (got,) = run_artifact(artifact, feed)
    np.testing.assert_allclose(got, record[(output_layer, 0)][0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("suffix", [".onnx", ""])
def test_recurrent_layers_are_exported(suffix, awkward, tmp_path, capsys, keras):
    out = tmp_path / f"rnn{suffix}"
    result = run_cli(capsys, "export", awkward / "rnn.keras", "-o", out, "--input-layer", "lstm")
    assert result.code == 0, result.err
    _check_against_keras(keras, awkward / "rnn.keras", out, {"lstm": "lstm"}, "out")


def test_litert_and_openvino_say_what_they_cannot_run(awkward, tmp_path, capsys):
    tflite = tmp_path / "rnn.tflite"
    refused = run_cli(capsys, "export", awkward / "rnn.keras", "-o", tflite)
    assert_one_line_error(refused, f"{tflite}: the artifact needs TensorFlow ops",
                          "FlexTensorListReserve", "export to .onnx")
    xml = tmp_path / "rnn.xml"
    refused = run_cli(capsys, "export", awkward / "rnn.keras", "-o", xml)
    assert_one_line_error(refused, f"{xml}: Keras could not export the submodel as openvino",
                          "No conversion rule found for operations: TensorList")
    assert list(tmp_path.iterdir()) == []  # nothing unproven left behind


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_attention_and_a_cut_inside_a_nested_backbone(awkward, suffix, tmp_path, capsys, keras):
    out = tmp_path / f"mha{suffix}"
    assert run_cli(capsys, "export", awkward / "mha.keras", "-o", out,
                   "--output-layer", "ln").code == 0
    _check_against_keras(keras, awkward / "mha.keras", out, {"tokens": "tokens"}, "ln")
    nested = BY_NAME["nested"].path
    inner = tmp_path / f"inner{suffix}"
    result = run_cli(capsys, "export", nested, "-o", inner, "--input-layer",
                     "backbone/stem_relu", "--output-layer", "backbone/block/block_relu",
                     "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert [o["source"] for o in doc["outputs"]] == ["backbone/block/block_relu"]
    assert [i["source"] for i in doc["inputs"]] == ["backbone/stem_relu"]
    parent = keras.saving.load_model(nested, compile=False)
    backbone = parent.get_layer("backbone")
    data = random_inputs(parent, batch=2, seed=2)
    stem = keras.Model(backbone.inputs, backbone.get_layer("stem_relu").output)(data[0])
    block = backbone.get_layer("block")
    want = block(stem)
    (got,) = run_artifact(inner, {doc["inputs"][0]["name"]: np.asarray(stem)})
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_keras_hub_backbone_prefix(suffix, tmp_path, capsys, keras):
    keras_hub = pytest.importorskip("keras_hub")
    backbone = keras_hub.models.BertBackbone(vocabulary_size=50, num_layers=2, num_heads=2,
                                             hidden_dim=8, intermediate_dim=16,
                                             max_sequence_length=8, name="tiny_bert")
    path = tmp_path / "bert.keras"
    backbone.save(path)
    out = tmp_path / f"bert{suffix}"
    result = run_cli(capsys, "export", path, "-o", out, "--output-layer",
                     "transformer_layer_0", "--custom-objects", "keras_hub", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["proven"] and {i["name"] for i in doc["inputs"]} >= {"token_ids"}
    if suffix in (".tflite", ".onnx"):  # --html draws the parent as graph does: built
        page = tmp_path / "where.html"
        result = run_cli(capsys, "verify", path, out, "--custom-objects", "keras_hub",
                         "--html", page)
        assert result.code == 0, result.err
        text = page.read_text(encoding="utf-8")
        assert '"status": "agrees"' in text and "transformer_layer_0" in text


def test_int8_is_judged_by_cosine_and_reports_what_numpy_computes(app_dir, tmp_path, capsys,
                                                                   keras):
    parent_path = app_dir / "mobilenetv2.keras"
    parent = keras.saving.load_model(parent_path, compile=False)
    name = parent.inputs[0].name
    rng = np.random.default_rng(4)
    calibration, given = tmp_path / "calib.npz", tmp_path / "given.npz"
    np.savez(calibration, **{name: rng.uniform(-1, 1, (16, 96, 96, 3)).astype("float32")})
    data = rng.uniform(-1, 1, (8, 96, 96, 3)).astype("float32")
    np.savez(given, **{name: data})
    layer, out = "block_3_expand_relu", tmp_path / "int8.tflite"
    result = run_cli(capsys, "export", parent_path, "-o", out, "--output-layer", layer,
                     "--quantize", "int8", "--calibration", calibration, "--inputs", given,
                     "--json")
    assert result.code == 0, result.err
    check = json.loads(result.out)["verify"]["outputs"][0]
    assert check["min_cosine"] == 0.99 and check["passed"]
    # the same numbers, computed here from Keras (the seed recipe) and LiteRT's own API
    want = np.asarray(keras.Model(parent.inputs, parent.get_layer(layer).output)(data),
                      np.float64)
    (got,) = run_artifact(out, {name: data})
    got = got.astype(np.float64)
    cosine = float((got * want).sum() / np.sqrt((got * got).sum() * (want * want).sum()))
    snr = 10 * np.log10((want * want).sum() / ((got - want) ** 2).sum())
    assert check["cosine_similarity"] == pytest.approx(cosine, rel=1e-6)
    assert check["snr_db"] == pytest.approx(snr, rel=1e-4)
    assert check["max_abs_error"] > 1e-5  # a float tolerance would have failed it
    # a threshold it does not reach: exit 1, nothing at OUTPUT
    strict = tmp_path / "strict.tflite"
    failed = run_cli(capsys, "export", parent_path, "-o", strict, "--output-layer", layer,
                     "--quantize", "int8", "--calibration", calibration, "--inputs", given,
                     "--min-cosine", "0.9999999")
    assert failed.code == 1 and not strict.exists()
    assert "cosine similarity" in failed.out and "below 0.9999999" in failed.out


@pytest.mark.parametrize("suffix,quantize", [(".tflite", "float16"), (".tflite", "dynamic"),
                                             (".onnx", "dynamic"), (".xml", "float16")])
def test_other_quantizations_are_proven(suffix, quantize, tmp_path, capsys):
    out = tmp_path / f"q{suffix}"
    result = run_cli(capsys, "export", RESIDUAL, "-o", out, "--input-layer", "res_b",
                     "--quantize", quantize, "--min-cosine", "0.995", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["verify"]["outputs"][0]["min_cosine"] == 0.995
    # checked again later, the artifact is judged as export judged it (its record says how),
    # against the parent and against a golden file
    golden = tmp_path / "q.golden.npz"
    again = run_cli(capsys, "verify", RESIDUAL, out, "--save-golden", golden, "--json")
    assert again.code == 0, again.out
    checked = json.loads(again.out)["outputs"][0]
    assert checked["min_cosine"] == 0.995
    assert run_cli(capsys, "verify", golden, out).code == 0
    # and a threshold above what it reaches, on the command line, fails it
    cosine = checked["cosine_similarity"]
    if cosine < 1.0:  # quantization on this tiny head may be exact
        threshold = f"{(1 + cosine) / 2:.17g}"
        strict = run_cli(capsys, "verify", RESIDUAL, out, "--min-cosine", threshold)
        assert strict.code == 1 and "FAILED" in strict.out


def test_quantization_options_are_checked_first(tmp_path, capsys):
    assert_one_line_error(run_cli(capsys, "export", RESIDUAL, "-o", tmp_path / "m.onnx",
                                  "--quantize", "int8"), "--quantize 'int8'", "dynamic")
    assert_one_line_error(run_cli(capsys, "export", RESIDUAL, "-o", tmp_path / "m.tflite",
                                  "--calibration", tmp_path / "c.npz"),
                          "--calibration", "--quantize int8")
    assert_one_line_error(run_cli(capsys, "export", RESIDUAL, "-o", tmp_path / "m.tflite",
                                  "--quantize", "int8", "--min-cosine", "2"), "--min-cosine")
    assert list(tmp_path.iterdir()) == []


def test_a_layer_name_tensorflow_refuses_is_one_plain_line(tmp_path, capsys, keras):
    x = keras.Input((4,), name="x")
    model = keras.Model(x, keras.layers.Dense(2, name="my dense")(x))
    model.save(tmp_path / "spaced.keras")
    out = tmp_path / "spaced.onnx"
    result = run_cli(capsys, "export", tmp_path / "spaced.keras", "-o", out)
    assert_one_line_error(result, "'my dense' is not a valid scope name", "rename the layer")
    assert "\x1b" not in result.err and "␛" not in result.err  # Keras' colour codes dropped
    assert "Arguments received" not in result.err
    assert list(tmp_path.iterdir()) == [tmp_path / "spaced.keras"]


@pytest.mark.parametrize("name", ["HEAD.XML", "Head.TFLite"])
def test_an_uppercase_suffix_is_exported_under_the_users_name(name, tmp_path, capsys):
    out = tmp_path / name  # converters insist on ".xml"/".tflite" (found by a new user)
    result = run_cli(capsys, "export", RESIDUAL, "-o", out, "--input-layer", "res_b")
    assert result.code == 0, result.err
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == (["HEAD.XML", "HEAD.bin"] if name.endswith("XML") else [name])
    assert run_cli(capsys, "verify", RESIDUAL, out).code == 0


def test_a_saved_model_never_replaces_its_own_input(tmp_path, capsys):
    """--force on a SavedModel folder that holds the parent deleted the parent (found by a new
    user): refused, nothing touched."""
    out = tmp_path / "sm"
    assert run_cli(capsys, "export", RESIDUAL, "-o", out, "--input-layer", "res_b").code == 0
    inside = out / "variables" / "parent.keras"
    inside.write_bytes(RESIDUAL.read_bytes())
    result = run_cli(capsys, "export", inside, "-o", out, "--input-layer", "res_b", "--force")
    assert_one_line_error(result, "an input of this command")
    assert inside.read_bytes() == RESIDUAL.read_bytes()
