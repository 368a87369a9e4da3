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
                                 "tensorflow.lite.python.convert.mlir_quantize",
                                 "Interpreter._get_ops_details"}
    converter = tf.lite.TFLiteConverter.from_concrete_functions([], None)
    assert hasattr(converter, CALIBRATE_ONLY)
    assert "denylisted_nodes" in inspect.signature(mlir_quantize).parameters
    from ai_edge_litert.interpreter import Interpreter

    assert callable(getattr(Interpreter, "_get_ops_details", None))


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


def op_dtypes(artifact) -> list[tuple[str, str, str]]:
    """(op kind, its output's name, its first input's dtype) of every op, by LiteRT itself."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(artifact))
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    return [(op["op_name"], tensors[op["outputs"][0]]["name"],
             str(np.dtype(tensors[op["inputs"][0]]["dtype"])))
            for op in interpreter._get_ops_details()]  # noqa: SLF001


def save(model, tmp_path, name):
    path = tmp_path / f"{name}.keras"
    model.save(path)
    return path


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights and layer.__class__.__name__ == "BatchNormalization":
            n = weights[0].shape[0]
            layer.set_weights([np.ones(n), rng.normal(0, 0.1, n), np.zeros(n), np.ones(n)])
        elif weights:
            layer.set_weights([rng.normal(0, 0.4, w.shape).astype("float32") for w in weights])


def test_the_layer_making_the_output_is_kept_float_and_pooling_is_refused(tmp_path, capsys,
                                                                          keras):
    """The converter names the output's op after the signature (`StatefulPartitionedCall`),
    not the layer: it is tied by the weights it reads. MAX_POOL_2D stays int8 whatever the
    quantizer is told: refused, nothing written."""
    x = keras.Input((8, 8, 3), name="x")
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(x)
    h = keras.layers.MaxPooling2D(name="maxp")(h)
    h = keras.layers.Flatten(name="flat")(h)
    model = keras.Model(x, keras.layers.Dense(4, name="last")(h))
    randomize(model)
    path = save(model, tmp_path, "tail")
    out = tmp_path / "m.tflite"
    result = run_cli(capsys, "export", path, "-o", out, "--quantize", "int8", "--keep-float",
                     "last", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["kept_float"] == {"last": ["FULLY_CONNECTED"]}
    kinds = {kind: dtype for kind, _, dtype in op_dtypes(out) if kind in ("FULLY_CONNECTED",
                                                                        "CONV_2D")}
    assert kinds == {"CONV_2D": "int8", "FULLY_CONNECTED": "float32"}
    assert "kept in float: last (FULLY_CONNECTED)" in result.err
    refused = run_cli(capsys, "export", path, "-o", tmp_path / "p.tflite", "--quantize",
                      "int8", "--keep-float", "maxp")
    assert_one_line_error(refused, "maxp (MAX_POOL_2D)", "--keep-float")
    assert not (tmp_path / "p.tflite").exists()


def conv_chain(keras, tmp_path, rescale: bool):
    """Five Conv+BN+ReLU blocks (fused into one op each); conv3 has the outlier, on a
    channel relu2 never lets through. With `rescale`, a Rescaling(1/255) first."""
    x = keras.Input((12, 12, 4), name="x")
    h = keras.layers.Rescaling(1 / 255, name="rescale")(x) if rescale else x
    for i in range(1, 6):
        h = keras.layers.Conv2D(8, 3, padding="same", name=f"conv{i}")(h)
        h = keras.layers.BatchNormalization(name=f"bn{i}")(h)
        h = keras.layers.ReLU(name=f"relu{i}")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    model = keras.Model(x, keras.layers.Dense(4, name="head")(h))
    randomize(model, 3)
    gamma, beta, mean, var = model.get_layer("bn2").get_weights()
    beta[0] = -100.0
    model.get_layer("bn2").set_weights([gamma, beta, mean, var])
    kernel, bias = model.get_layer("conv3").get_weights()
    kernel[:, :, 0, :] = 1000.0
    model.get_layer("conv3").set_weights([kernel, bias])
    return save(model, tmp_path, "chain")


@pytest.mark.parametrize("rescale", [False, True], ids=["plain", "rescaled"])
def test_a_fused_block_is_ranked_by_its_own_loss(tmp_path, capsys, keras, rescale):
    """Conv+BN+ReLU is one op, compared as the ReLU's row: its own loss is against what feeds
    the block, not everything before it. A Rescaling (255 times smaller than the quantized
    input tensor) is not tied to that tensor by its direction alone."""
    path = conv_chain(keras, tmp_path, rescale)
    result = run_cli(capsys, "export", path, "-o", tmp_path / "m.tflite", "--quantize",
                     "int8", "--locate", "--json")
    assert result.code == 1, result.err
    where = json.loads(result.out)["verify"]["locate"]
    assert where["first_failing_layer"] == "relu3"
    assert where["own_snr_loss_db"][0]["layer"] == "relu3"
    assert where["keep_float_suggestion"][0] == "relu3"
    trials = json.loads(result.out)["keep_float_trials"]
    assert trials[0]["layers"] == ["relu3"] and trials[0]["proven"]
    rows = {row["layer"]: row for row in where["layers"]}
    assert "rescale" not in rows or rows["rescale"]["snr_db"] > 20


def two_culprits(keras, tmp_path):
    """Dense layers where b has a large outlier weight and e a milder one, each on an input
    that is always 0."""
    x = keras.Input((12,), name="x")
    h = x
    for name in ("a", "b", "c1", "c2", "c3", "c4", "d", "e", "f"):
        h = keras.layers.Dense(16, activation="relu", name=name)(h)
    model = keras.Model(x, keras.layers.Dense(4, name="out")(h))
    rng = np.random.default_rng(2)
    for layer in model.layers[1:]:
        kernel, bias = layer.get_weights()
        layer.set_weights([rng.normal(0, 0.5, kernel.shape).astype("float32"),
                           rng.normal(0, 0.1, bias.shape).astype("float32")])
    for dead, outlier, value in (("a", "b", 1000.0), ("d", "e", 60.0)):
        kernel, bias = model.get_layer(dead).get_weights()
        bias[0] = -100.0
        model.get_layer(dead).set_weights([kernel, bias])
        kernel, bias = model.get_layer(outlier).get_weights()
        kernel[0, :] = value
        model.get_layer(outlier).set_weights([kernel, bias])
    return save(model, tmp_path, "two")


def test_a_second_culprit_is_found_once_the_first_is_float(tmp_path, capsys, keras):
    """b (a large outlier) hides e (a milder one): e loses little while b's error fills its
    input. Once b is float, e's loss shows in that trial's own ranking, and is tried next."""
    path = two_culprits(keras, tmp_path)
    result = run_cli(capsys, "export", path, "-o", tmp_path / "m.tflite", "--quantize",
                     "int8", "--locate", "--json")
    assert result.code == 1, result.err
    trials = json.loads(result.out)["keep_float_trials"]
    assert [(t["layers"], t["proven"]) for t in trials] == [(["b"], False),
                                                            (["b", "e"], True)]


def test_a_bad_calibration_file_is_named_as_such(hard_model, tmp_path, capsys):
    bad = tmp_path / "cal.npz"
    np.savez(bad, y=np.zeros((4, 12), "float32"))
    assert_one_line_error(run_cli(capsys, "export", hard_model, "-o", tmp_path / "m.tflite",
                                  "--quantize", "int8", "--calibration", bad),
                          "--calibration", "cal.npz")


def test_bisect_exports_prefixes_as_the_artifact_was_made(tmp_path, capsys, keras):
    """With b kept in float, the prefixes keep it in float too (a prefix without it would
    blame b): the bisection names e, as --locate does."""
    path = two_culprits(keras, tmp_path)
    result = run_cli(capsys, "export", path, "-o", tmp_path / "m.tflite", "--quantize", "int8",
                     "--keep-float", "b", "--bisect", "--json")
    assert result.code == 1, result.err
    doc = json.loads(result.out)
    assert doc["verify"]["locate"]["first_failing_layer"] == "e"
    assert doc["bisect"]["first_failing_layer"] == "e", doc["bisect"]["tried"]
