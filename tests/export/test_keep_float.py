"""int8 quantization error by Keras layer, and `export --quantize int8 --keep-float LAYER`.
The culprit is known: `hard` has one outlier weight per output (on an input that is always 0,
so the float model never feels it) that leaves its other weights to round to zero in int8.
Which layers stay float is read back from the artifact by LiteRT itself."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.cli_helpers import assert_one_line_error, run_cli

pytestmark = pytest.mark.heavy
pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed")


@pytest.fixture(scope="module")
def hard_model(tmp_path_factory, keras):
    x = keras.Input((12,), name="x")
    h = keras.layers.Dense(16, activation="relu", name="pre")(x)
    h = keras.layers.Dense(16, activation="relu", name="hard")(h)
    h = keras.layers.Dense(16, activation="relu", name="mid")(h)
    model = keras.Model(x, keras.layers.Dense(4, name="out")(h), name="hardq")
    rng = np.random.default_rng(0)
    for layer in model.layers[1:]:
        kernel, bias = layer.get_weights()
        layer.set_weights([rng.normal(0, 0.5, kernel.shape).astype("float32"),
                           rng.normal(0, 0.1, bias.shape).astype("float32")])
    kernel, bias = model.get_layer("pre").get_weights()
    bias[0] = -100.0  # pre's channel 0 is always 0 after its relu
    model.get_layer("pre").set_weights([kernel, bias])
    kernel, bias = model.get_layer("hard").get_weights()
    kernel[0, :] = 1000.0  # the outlier, on that dead channel
    model.get_layer("hard").set_weights([kernel, bias])
    path = tmp_path_factory.mktemp("int8") / "hard.keras"
    model.save(path)
    return path




def test_the_layer_hard_to_quantize_is_ranked_first_and_kept_float(hard_model, tmp_path,
                                                                    capsys):
    out = tmp_path / "m.tflite"
    result = run_cli(capsys, "export", hard_model, "-o", out, "--quantize", "int8",
                     "--locate", "--json")
    assert result.code == 1, result.err  # int8 everywhere: the outputs are far off
    where = json.loads(result.out)["verify"]["locate"]
    assert where["first_failing_layer"] == "hard"
    assert where["own_snr_loss_db"][0]["layer"] == "hard"
    assert where["own_snr_loss_db"][0]["db"] > 20
    assert where["keep_float_suggestion"] == ["hard"]
    # export tried the suggestion itself: int8 with hard in float is proven
    trials = json.loads(result.out)["keep_float_trials"]
    assert [(t["layers"], t["proven"]) for t in trials] == [(["hard"], True)]
    assert trials[0]["min_cosine"] >= 0.99
    rows = {row["layer"]: row for row in where["layers"]}
    assert rows["pre"]["passed"] and not rows["hard"]["passed"]
    # the suggestion, followed: proven within the same cosine rule
    result = run_cli(capsys, "export", hard_model, "-o", out, "--quantize", "int8",
                     "--keep-float", "hard", "--json")
    assert result.code == 0, result.out[-3000:]
    cosine = json.loads(result.out)["verify"]["outputs"][0]["cosine_similarity"]
    assert cosine >= 0.99
    # LiteRT reads the artifact: hard's ops are float, the others' int8
    from ai_edge_litert.interpreter import Interpreter

    ops = Interpreter(model_path=str(out))._get_ops_details()  # noqa: SLF001
    details = {d["index"]: d for d in Interpreter(model_path=str(out)).get_tensor_details()}
    kinds = {}
    for op in ops:
        if op["op_name"] != "FULLY_CONNECTED":
            continue
        name = details[op["outputs"][0]]["name"]
        # the last one's output is the model's, named by the converter alone
        layer = next((n for n in ("pre", "hard", "mid") if f"{n}_1/" in name), "out")
        kinds[layer] = str(np.dtype(details[op["inputs"][1]]["dtype"]))  # the weights
    assert kinds == {"pre": "int8", "hard": "float32", "mid": "int8", "out": "int8"}


def test_keep_float_needs_an_int8_tflite_and_a_layer_of_the_cut(hard_model, tmp_path, capsys):
    assert_one_line_error(run_cli(capsys, "export", hard_model, "-o", tmp_path / "m.onnx",
                                  "--keep-float", "hard"), "--keep-float", "--quantize int8")
    assert_one_line_error(run_cli(capsys, "export", hard_model, "-o", tmp_path / "m.tflite",
                                  "--quantize", "int8", "--keep-float", "nosuch"),
                          "--keep-float", "'nosuch'")
    assert_one_line_error(run_cli(capsys, "export", hard_model, "-o", tmp_path / "m.tflite",
                                  "--quantize", "int8", "--output-layer", "pre",
                                  "--keep-float", "hard"), "'hard'")
    assert not list(tmp_path.iterdir())


def test_the_private_tensorflow_apis_keep_float_relies_on():
    """Fails by name when a TensorFlow upgrade removes or changes one."""
    import inspect

    import tensorflow as tf
    from tensorflow.lite.python.convert import mlir_quantize

    from keras_cut.backend.litert.keep_float import CALIBRATE_ONLY, PRIVATE_APIS

    assert set(PRIVATE_APIS) == {"TFLiteConverter._experimental_calibrate_only",
                                 "tensorflow.lite.python.convert.mlir_quantize"}
    converter = tf.lite.TFLiteConverter.from_concrete_functions([], None)
    assert hasattr(converter, CALIBRATE_ONLY)
    assert "denylisted_nodes" in inspect.signature(mlir_quantize).parameters


def test_export_writes_the_page_and_the_reproducer_when_int8_fails(hard_model, tmp_path,
                                                                   capsys):
    """--html and --save-repro imply --locate; the reproducer's part, exported afresh in int8,
    fails its golden file by the same cosine rule, in a fresh process."""
    from tests.cli_helpers import run_process

    page, repro = tmp_path / "where.html", tmp_path / "repro"
    result = run_cli(capsys, "export", hard_model, "-o", tmp_path / "m.tflite", "--quantize",
                     "int8", "--html", page, "--save-repro", repro, "--json")
    assert result.code == 1, result.err
    written = json.loads(result.out)["repro"]
    assert written["culprit"] == "hard" and written["starts_at"] == ["pre"]
    assert written["reproduces"] is True
    shown = run_process("verify", repro / "golden.npz", repro / "part.tflite", "--json")
    assert shown.code == 1 and "cosine" in json.dumps(json.loads(shown.out)["outputs"][0])
    import re

    data = json.loads(re.search(r'id="graph-data">(.*?)</script>', page.read_text(),
                                re.S).group(1))
    status = {n["label"]: n["overlay"]["status"] for n in data["nodes"]}
    assert status == {"x": "outside", "pre": "agrees", "hard": "first", "mid": "differs",
                      "out": "differs"}
