"""tf.keras 2 `.h5` files: same answers as tf.keras 2 itself gives, for inspect, cut and verify.

The files and the reference answers come from tf_keras in a separate process
(tests/legacy_models.py); nothing here trusts keras-cut's own loading to judge itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from keras_cut.cut.cutting import cut_model
from keras_cut.file.reading import read_model_file
from keras_cut.inspect.inspection import inspect_model
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.keras_reference import parse_source

pytestmark = pytest.mark.heavy  # runs models through TensorFlow (make test-fast skips it)

NAMES = ["cnn", "sequential", "residual", "mobilenetv2", "nested", "nested_mobilenet"]
KERAS3_REFUSES = {"mobilenetv2", "nested", "nested_mobilenet"}


def reference(legacy_dir, name):
    facts = json.loads((legacy_dir / f"{name}.json").read_text())
    return facts, dict(np.load(legacy_dir / f"{name}.npz"))


@pytest.mark.parametrize("name", NAMES)
def test_inspect_matches_tf_keras(name, legacy_dir):
    facts, _ = reference(legacy_dir, name)
    report = inspect_model(legacy_dir / f"{name}.h5")
    assert report.keras_version.startswith("2.")
    rows = {row.name: row for row in report.layers}
    for path, fact in facts.items():
        row = rows[path]
        assert (row.params, row.trainable_params) == (fact["params"], fact["trainable"]), path
        assert list(row.output_shapes[0][0]) == fact["shape"], path
    top = [path for path in facts if "/" not in path]
    assert report.total_params == sum(facts[p]["params"] for p in top)


@pytest.mark.parametrize("name", NAMES)
def test_parent_loads_with_tf_keras_outputs(name, legacy_dir, keras):
    from keras_cut.backend.keras import saved

    _, arrays = reference(legacy_dir, name)
    model, note = saved.load_saved_model(read_model_file(legacy_dir / f"{name}.h5"))
    assert (note is not None) == (name in KERAS3_REFUSES)
    got = np.asarray(model(arrays["x"], training=False))
    np.testing.assert_allclose(got, arrays["y"], rtol=1e-5, atol=1e-5)


CUTS = [
    ("cnn", ["intermediate_dense"], []),
    ("cnn", [], ["flatten"]),
    ("sequential", ["bn"], []),
    ("sequential", [], ["dropout"]),
    ("residual", [], ["res_b"]),
    ("residual", ["res_add"], ["res_a"]),
    ("mobilenetv2", ["block_13_expand"], []),
    ("mobilenetv2", [], ["block_6_project_BN"]),
    ("nested", ["backbone/bn"], []),
    ("nested", [], ["backbone/c1"]),
    ("nested", ["add"], ["gap"]),
    ("nested", ["gap"], []),  # the backbone kept whole, its tf.keras 2 calls rewritten
    ("nested_mobilenet", ["head"], []),
    ("nested_mobilenet", ["backbone/block_5_add"], []),
    ("nested_mobilenet", [], ["backbone/block_3_project_BN"]),
]


@pytest.mark.parametrize("name,outputs,inputs", CUTS,
                         ids=[f"{n}:{'+'.join(o) or 'end'}<-{'+'.join(i) or 'inputs'}"
                              for n, o, i in CUTS])
def test_cuts_match_tf_keras(name, outputs, inputs, legacy_dir, tmp_path, keras):
    facts, arrays = reference(legacy_dir, name)
    sub_path = tmp_path / "sub.keras"
    result = cut_model(legacy_dir / f"{name}.h5", sub_path, outputs, inputs)
    sub = keras.saving.load_model(sub_path, compile=False)

    def activation(label):
        path, call, index = parse_source(label)
        assert call == 0 and index == 0
        return arrays[f"act|{path}"]

    feed = [arrays["x"] if t.role == "parent_input" else activation(t.source)
            for t in result.inputs]
    got = sub(feed if len(feed) > 1 else feed[0], training=False)
    got = got if isinstance(got, (list, tuple)) else [got]
    for value, tensor in zip(got, result.outputs, strict=True):
        np.testing.assert_allclose(np.asarray(value), activation(tensor.source),
                                   rtol=1e-5, atol=1e-5, err_msg=tensor.source)
    # Every kept weight is tf.keras 2's own, bit for bit.
    by_leaf = {path.rsplit("/", 1)[-1]: path for path in facts}
    for layer in sub.layers:
        path = by_leaf.get(layer.name)
        if hasattr(layer, "layers") or path is None or isinstance(layer, keras.layers.InputLayer):
            continue
        theirs = [v for k, v in arrays.items() if k.startswith(f"w|{path}|")]
        assert len(theirs) == len(layer.weights), layer.name
        for w, value in zip(layer.weights, theirs, strict=True):
            assert np.asarray(w.numpy()).tobytes() == value.tobytes(), (layer.name, w.name)


@pytest.mark.parametrize("name", ["mobilenetv2", "nested", "cnn"])
def test_verify_legacy_parent(name, legacy_dir, tmp_path, capsys):
    sub = tmp_path / "sub.keras"
    point = {"mobilenetv2": "block_6_project_BN", "nested": "backbone/c1", "cnn": "flatten"}[name]
    cut_model(legacy_dir / f"{name}.h5", sub, [], [point])
    result = run_cli(capsys, "verify", legacy_dir / f"{name}.h5", sub, "--samples", "4")
    assert result.code == 0, result.out + result.err
    assert ("legacy normalisation" in result.err) == (name in KERAS3_REFUSES)


def test_normalisations_are_findings(legacy_dir):
    findings = inspect_model(legacy_dir / "mobilenetv2.h5").findings
    notes = [f for f in findings if f.kind == "legacy"]
    assert notes and all(f.severity == "note" for f in notes)
    assert any(f.layer == "block_1_depthwise" and "`groups=1` dropped" in f.message
               for f in notes)
    nested = inspect_model(legacy_dir / "nested.h5").findings
    assert [(f.layer, f.kind) for f in nested] == [("backbone/bn", "legacy"),
                                                   ("backbone", "legacy")]
    assert "`axis=[3]` written as 3" in nested[0].message
    assert "renumbered" in nested[1].message
    assert inspect_model(legacy_dir / "cnn.h5").findings == []


def test_unmappable_legacy_config_is_a_clear_error(legacy_dir, tmp_path, capsys):
    path = tmp_path / "grouped.h5"
    shutil.copy(legacy_dir / "mobilenetv2.h5", path)
    with h5py.File(path, "a") as h5:
        config = json.loads(h5.attrs["model_config"])
        layer = next(x for x in config["config"]["layers"] if x["name"] == "block_2_depthwise")
        layer["config"]["groups"] = 2
        h5.attrs["model_config"] = json.dumps(config)
    assert_one_line_error(run_cli(capsys, "inspect", path), "block_2_depthwise", "groups=2")


BIDIRECTIONAL = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tf_keras as k
k.utils.set_random_seed(0)
x = k.Input((6, 3), name="x")
h = k.layers.LSTM(4, return_sequences=True, name="lstm")(x)
h = k.layers.Bidirectional(k.layers.GRU(3), name="bi")(h)
model = k.Model(x, k.layers.Dense(2, name="out")(h))
data = np.random.default_rng(0).uniform(-1, 1, (4, 6, 3)).astype("float32")
model.save(sys.argv[1] + "/bi.h5")
np.savez(sys.argv[1] + "/bi.npz", x=data, y=model.predict(data, verbose=0),
         shapes=np.array([str(tuple(layer.output_shape)) for layer in model.layers[1:]]))
"""



def test_bidirectional_and_time_major(tmp_path, capsys):
    """tf.keras 2 writes `time_major=False` (Keras 3 refuses it) and a Bidirectional layer holds
    two `kernel`s: both must load as tf.keras 2 computes them."""
    run_tf_keras(BIDIRECTIONAL, tmp_path)
    from keras_cut.backend.keras.saved import load_saved_model

    model, note = load_saved_model(read_model_file(tmp_path / "bi.h5"))
    assert note and "legacy normalisation" in note
    reference = np.load(tmp_path / "bi.npz")
    np.testing.assert_allclose(np.asarray(model(reference["x"])), reference["y"], atol=1e-5)
    report = inspect_model(tmp_path / "bi.h5")
    assert any("time_major" in f.message for f in report.findings)
    # tf.keras 2 records no shapes: they are inferred, Bidirectional's included, and agree
    # with tf.keras' own
    assert [str(row.output_shape) for row in report.layers[1:]] == list(reference["shapes"])
    assert report.cost.macs_known
    result = run_cli(capsys, "verify", tmp_path / "bi.h5", tmp_path / "bi.h5")
    assert result.code == 0, result.out[-500:]


TF_OPS = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf, tf_keras as k
k.utils.set_random_seed(0)
x = k.Input((6,), name="x")
h = k.layers.Dense(8, name="dense")(x)
a = h * 2.0 + 1.0
q = k.layers.Dense(8, name="q")(h)
s = a + q
c = tf.concat([s, tf.reduce_mean(a, axis=-1, keepdims=True)], axis=-1)
out = k.layers.Dense(2, name="out")(tf.nn.relu6(c)[:, 0:4])
model = k.Model(x, out)
model.save(sys.argv[1] + "/ops.h5")
data = np.random.default_rng(0).normal(size=(3, 6)).astype("float32")
probe = k.Model(x, [q, c, out])
q_, c_, y_ = probe.predict(data, verbose=0)
np.savez(sys.argv[1] + "/ops.npz", x=data, q=q_, c=c_, y=y_)
"""

# Every translated function once, with tf.keras 2's own output as the reference; and one
# function keras-cut does not translate (tf.math.cumsum) in a second model.
MORE_OPS = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf, tf_keras as k
k.utils.set_random_seed(1)
x = k.Input((4, 6), name="x")
h = k.layers.Dense(6, name="proj")(x)
p = tf.math.abs(h) + 0.5
terms = [
    tf.math.subtract(h, 1.0), tf.math.truediv(h, 3.0), tf.math.maximum(h, 0.1),
    tf.math.minimum(h, p), tf.math.pow(p, 2.0), tf.nn.relu(h), tf.math.sigmoid(h),
    tf.math.tanh(h), tf.math.sqrt(p), tf.math.exp(h * 0.1), tf.math.log(p),
    tf.math.square(h), tf.nn.softmax(h, axis=-1),
    tf.cast(tf.cast(h * 10.0, "int32"), "float32"),
]
stacked = tf.stack(terms, axis=1)  # (None, 14, 4, 6)
summed = tf.reduce_sum(stacked, axis=1) + tf.reduce_max(stacked, axis=1) \
    - tf.reduce_min(stacked, axis=1)
moved = tf.transpose(summed, perm=[0, 2, 1])  # (None, 6, 4)
flat = tf.reshape(moved, (-1, 24))
scores = tf.linalg.matmul(h, tf.transpose(h, perm=[0, 2, 1]))  # (None, 4, 4)
wide = tf.expand_dims(flat, axis=1)  # (None, 1, 24)
first = tf.squeeze(wide, axis=1)[:, 2]  # an integer index: (None,)
out = k.layers.Dense(3, name="out")(tf.concat([flat, tf.reshape(scores, (-1, 16)),
                                              tf.expand_dims(first, -1)], axis=-1))
model = k.Model(x, out)
model.save(sys.argv[1] + "/more.h5")
data = np.random.default_rng(0).normal(size=(5, 4, 6)).astype("float32")
np.savez(sys.argv[1] + "/more.npz", x=data, y=model.predict(data, verbose=0))
y = k.Input((5,), name="y")
k.Model(y, k.layers.Dense(2, name="d")(tf.math.cumsum(y, axis=-1))).save(
    sys.argv[1] + "/cumsum.h5")
"""

LOAD_WITH_TF_KERAS = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tf_keras as k
ref = np.load(sys.argv[2])
y = k.models.load_model(sys.argv[1], compile=False).predict(ref["x"], verbose=0)
np.testing.assert_allclose(y, ref["q"], rtol=1e-5, atol=1e-5)
print("MATCH")
"""


def test_tf_op_layers_become_keras_3_operations(tmp_path, capsys, keras):
    """tf.keras 2 TFOpLambda layers (`h * 2.0`, `a + q` with a tensor by keyword, tf.concat,
    slicing) are translated to Keras 3 operations: inspect, cut, verify and convert work, and
    the results compute what tf.keras 2 computed."""
    run_tf_keras(TF_OPS, tmp_path)
    parent, reference = tmp_path / "ops.h5", np.load(tmp_path / "ops.npz")
    report = inspect_model(parent)
    rows = {row.name: row for row in report.layers}
    assert rows["tf.__operators__.add_1"].inbound == [["tf.__operators__.add", "q"]]
    assert rows["tf.concat"].inbound == [["tf.__operators__.add_1", "tf.math.reduce_mean"]]
    assert rows["tf.math.multiply"].class_name == "Multiply"
    assert rows["tf.concat"].output_shape == (None, 9)
    notes = [f.message for f in report.findings if "translated" in f.message]
    assert len(notes) == 7 and not [f for f in report.findings if f.kind == "tf-op"]
    # a .keras cut keeping them: plain Keras 3 computes tf.keras 2's tensor
    kept = tmp_path / "concat.keras"
    assert run_cli(capsys, "cut", parent, "-o", kept, "--output-layer", "tf.concat").code == 0
    model = keras.saving.load_model(kept)
    np.testing.assert_allclose(model.predict(reference["x"], verbose=0), reference["c"],
                               rtol=1e-5, atol=1e-5)
    assert run_cli(capsys, "verify", parent, kept).code == 0
    result = run_cli(capsys, "cut", parent, "-o", tmp_path / "c.h5", "--output-layer",
                     "tf.concat")
    assert_one_line_error(result, "tf.math.multiply", "write the cut as .keras")
    # around them, into tf.keras 2's own dialect: tf.keras loads it
    around = tmp_path / "q.h5"
    assert run_cli(capsys, "cut", parent, "-o", around, "--output-layer", "q").code == 0
    assert "MATCH" in run_tf_keras(LOAD_WITH_TF_KERAS, around, tmp_path / "ops.npz")
    converted = tmp_path / "ops.keras"
    assert run_cli(capsys, "convert", parent, "-o", converted).code == 0
    np.testing.assert_allclose(keras.saving.load_model(converted).predict(
        reference["x"], verbose=0), reference["y"], rtol=1e-5, atol=1e-5)
    assert run_cli(capsys, "graph", parent, "-o", tmp_path / "g.mmd").code == 0


def test_every_translation_against_tf_keras(tmp_path, capsys, keras):
    run_tf_keras(MORE_OPS, tmp_path)
    converted = tmp_path / "more.keras"
    result = run_cli(capsys, "convert", tmp_path / "more.h5", "-o", converted)
    assert result.code == 0, result.err
    from keras_cut.layers.tfops import TRANSLATIONS

    used = {m.group(1) for m in re.finditer(r"tf\.(\S+) translated", result.err)}
    assert len(used) >= 24 and used <= set(TRANSLATIONS)
    reference = np.load(tmp_path / "more.npz")
    got = keras.saving.load_model(converted).predict(reference["x"], verbose=0)
    np.testing.assert_allclose(got, reference["y"], rtol=1e-4, atol=1e-4)
    # a function without a faithful translation: named, never approximated
    report = inspect_model(tmp_path / "cumsum.h5")
    assert [f.layer for f in report.findings if f.kind == "tf-op"] == ["tf.math.cumsum"]
    assert_one_line_error(run_cli(capsys, "convert", tmp_path / "cumsum.h5", "-o",
                                  tmp_path / "cumsum.keras"), "tf.math.cumsum")
    assert_one_line_error(run_cli(capsys, "verify", tmp_path / "cumsum.h5",
                                  tmp_path / "cumsum.h5"), "tf.math.cumsum")


CONSTANT_FIRST = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf, tf_keras as k
k.utils.set_random_seed(2)
x = k.Input((5,), name="x")
h = k.layers.Dense(5, name="h")(x)
p = tf.math.abs(h) + 0.5
terms = [2.0 - h, 3.0 * h, 3.0 / p, tf.math.pow(2.0, h), tf.math.minimum(0.5, h),
         tf.math.subtract(1.0, h), tf.math.maximum(0.1, h), 1.5 + h]
out = k.layers.Dense(2, name="out")(tf.concat(terms, axis=-1))
model = k.Model(x, out)
model.save(sys.argv[1] + "/constant.h5")
data = np.random.default_rng(0).normal(size=(4, 5)).astype("float32") * 3
np.savez(sys.argv[1] + "/constant.npz", x=data, y=model.predict(data, verbose=0))
mod = k.Model(x, k.layers.Dense(2, name="out")(tf.math.floormod(7.0, h)))  # not translated
mod.save(sys.argv[1] + "/mod.h5")
np.savez(sys.argv[1] + "/mod.npz", x=data, q=mod.predict(data, verbose=0))
"""


def test_a_constant_first_operand_keeps_its_place(tmp_path, capsys, keras):
    """tf.keras 2 writes `2.0 - h` as tf.math.subtract with a `_CONSTANT_VALUE` entry first:
    translated with the operands in their order, it computes what tf.keras 2 computed; a cut
    that drops those operations reads the file too."""
    run_tf_keras(CONSTANT_FIRST, tmp_path)
    parent, reference = tmp_path / "constant.h5", np.load(tmp_path / "constant.npz")
    report = inspect_model(parent)
    assert not [f for f in report.findings if f.kind == "tf-op"]
    assert {row.name: row.inbound for row in report.layers}["tf.math.pow"] == [["h"]]
    converted = tmp_path / "constant.keras"
    assert run_cli(capsys, "convert", parent, "-o", converted).code == 0
    got = keras.saving.load_model(converted).predict(reference["x"], verbose=0)
    np.testing.assert_allclose(got, reference["y"], rtol=1e-5, atol=1e-5)
    assert run_cli(capsys, "verify", parent, converted, "--samples", "4").code == 0
    assert run_cli(capsys, "cut", parent, "-o", tmp_path / "h.h5", "--output-layer", "h").code == 0
    assert run_cli(capsys, "graph", parent, "-o", tmp_path / "g.dot").code == 0
    # an operation keras-cut does not translate keeps its constant in tf.keras 2's dialect
    kept = tmp_path / "mod_cut.h5"
    assert run_cli(capsys, "cut", tmp_path / "mod.h5", "-o", kept, "--output-layer",
                   "out").code == 0
    assert "MATCH" in run_tf_keras(LOAD_WITH_TF_KERAS, kept, tmp_path / "mod.npz")


WRAPPERS = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tf_keras as k
k.utils.set_random_seed(3)
L = k.layers
cases = {
    "td_dense": ((3, 4), lambda x: L.TimeDistributed(L.Dense(2), name="w")(x)),
    "td_conv": ((3, 6, 6, 2), lambda x: L.TimeDistributed(L.Conv2D(3, 3), name="w")(x)),
    "td_bn": ((3, 6, 6, 2), lambda x: L.TimeDistributed(L.BatchNormalization(), name="w")(x)),
    "td_lstm": ((4, 5, 3), lambda x: L.TimeDistributed(L.LSTM(2), name="w")(x)),
    "rnn_cell": ((5, 4), lambda x: L.RNN(L.GRUCell(3), name="w")(x)),
    "stacked": ((5, 4), lambda x: L.RNN(L.StackedRNNCells(
        [L.LSTMCell(3), L.GRUCell(2), L.LSTMCell(2)]), name="w")(x)),
    "convlstm": ((3, 6, 6, 2), lambda x: L.ConvLSTM2D(2, 3, recurrent_activation="sigmoid",
                                                    name="w")(x)),
    "hard": ((3, 6, 6, 2), lambda x: L.ConvLSTM2D(2, 3, name="w")(x)),  # hard_sigmoid
}
for name, (shape, build) in cases.items():
    x = k.Input(shape, name="x")
    model = k.Model(x, build(x))
    model.save(f"{sys.argv[1]}/{name}.h5")
    data = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32") * 2
    np.savez(f"{sys.argv[1]}/{name}.npz", x=data, y=model.predict(data, verbose=0))
"""


def test_wrappers_and_composite_layers_convert(tmp_path, capsys, keras):
    """TimeDistributed (around Dense, Conv2D, BatchNormalization with tf.keras 2's one-element
    axis list, LSTM), RNN around a cell or StackedRNNCells, ConvLSTM2D: converted to .keras,
    each computes what tf.keras 2 computed. A ConvLSTM2D with tf.keras 2's default
    hard_sigmoid is refused: Keras 3's hard_sigmoid is another function."""
    run_tf_keras(WRAPPERS, tmp_path)
    for name in ("td_dense", "td_conv", "td_bn", "td_lstm", "rnn_cell", "stacked", "convlstm"):
        out = tmp_path / f"{name}.keras"
        result = run_cli(capsys, "convert", tmp_path / f"{name}.h5", "-o", out)
        assert result.code == 0, (name, result.err)
        reference = np.load(tmp_path / f"{name}.npz")
        got = keras.saving.load_model(out).predict(reference["x"], verbose=0)
        np.testing.assert_allclose(got, reference["y"], rtol=1e-5, atol=1e-5, err_msg=name)
    hard = tmp_path / "hard.h5"
    assert_one_line_error(run_cli(capsys, "convert", hard, "-o", tmp_path / "hard.keras"),
                          "hard_sigmoid", "tf.keras 2's .h5")
    assert_one_line_error(run_cli(capsys, "verify", hard, hard), "hard_sigmoid")
    findings = [f for f in inspect_model(hard).findings if f.kind == "legacy-semantics"]
    assert [f.layer for f in findings] == ["w"]
    assert run_cli(capsys, "cut", hard, "-o", tmp_path / "h.h5", "--output-layer", "w").code == 0


def test_convert_a_tf_keras_2_file_to_keras_3(tmp_path, capsys, keras):
    """`convert`: a tf.keras 2 .h5 (LSTM, Bidirectional GRU, time_major, batch_input_shape)
    becomes a .keras file that plain Keras 3 loads without a warning and that computes what
    tf.keras 2 computed; every normalisation is reported; verify passes."""
    _, result = _convert_and_load(BIDIRECTIONAL, "bi", tmp_path, capsys, keras)
    assert "time_major" in result.err and "converted bi" in result.err
    out = tmp_path / "bi.keras"
    assert_one_line_error(run_cli(capsys, "convert", tmp_path / "bi.h5", "-o", out),
                          "already exists", "--force")


MASKED_ATTENTION = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf, tf_keras as k
k.utils.set_random_seed(2)
tok = k.Input((7,), dtype="int32", name="tok")
e = k.layers.Embedding(20, 8, mask_zero=True, name="emb")(tok)
h = k.layers.Bidirectional(k.layers.LSTM(4, return_sequences=True), name="bilstm")(e)
q = k.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(h, h)
out = k.layers.Dense(3, name="out")(tf.reduce_mean(h + q, axis=1))
model = k.Model(tok, out)
model.save(sys.argv[1] + "/mha.h5")
data = np.array([[1, 2, 3, 0, 0, 0, 0], [4, 5, 6, 7, 8, 9, 1], [3, 3, 0, 0, 0, 0, 0]], "int32")
np.savez(sys.argv[1] + "/mha.npz", x=data, y=model.predict(data, verbose=0))
"""


def test_convert_masked_rnn_and_attention(tmp_path, capsys, keras):
    """Embedding with a mask, a Bidirectional LSTM, MultiHeadAttention (its `value` passed by
    keyword, its build shapes recorded) and a residual `h + q`: the converted file loads in plain
    Keras 3 without a warning and computes what tf.keras 2 computed, padding included."""
    _, result = _convert_and_load(MASKED_ATTENTION, "mha", tmp_path, capsys, keras)
    assert "passes a tensor by keyword (value)" in result.err and "query_shape" in result.err
    # a head from the attention on: the embedding's mask does not cross the cut. The cut says
    # so, and verify (padding among its samples) must not pass it
    head = tmp_path / "head.keras"
    result = run_cli(capsys, "cut", tmp_path / "mha.h5", "-o", head, "--input-layer", "bilstm")
    assert result.code == 0 and "a mask from 'emb' may reach 'bilstm'" in result.err
    assert run_cli(capsys, "verify", tmp_path / "mha.h5", head).code == 1
    # a head after the mask's last user (the LSTM's return is per step, the pooling ends it)
    tail = tmp_path / "tail.keras"
    assert run_cli(capsys, "cut", tmp_path / "mha.h5", "-o", tail, "--input-layer",
                   "tf.math.reduce_mean").code == 0
    assert run_cli(capsys, "verify", tmp_path / "mha.h5", tail).code == 0


def _convert_and_load(script: str, name: str, tmp_path, capsys, keras):
    """Write `name`.h5 with tf_keras, convert it, load the result in plain Keras 3 (safe mode,
    no keras-cut) and insist that Keras warned about nothing, that it computes what tf.keras 2
    computed (`name`.npz: x, y) and that `verify` passes it."""
    import warnings

    run_tf_keras(script, tmp_path)
    result = run_cli(capsys, "convert", tmp_path / f"{name}.h5", "-o", tmp_path / f"{name}.keras")
    assert result.code == 0, result.err
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras.saving.load_model(tmp_path / f"{name}.keras")
    assert not [w for w in caught if "keras" in str(w.filename)], [str(w.message) for w in caught]
    reference = np.load(tmp_path / f"{name}.npz")
    np.testing.assert_allclose(model.predict(reference["x"], verbose=0), reference["y"],
                               rtol=1e-5, atol=1e-5)
    assert run_cli(capsys, "verify", tmp_path / f"{name}.h5", tmp_path / f"{name}.keras").code == 0
    return model, result


def run_tf_keras(script: str, *args: object) -> str:
    """Run a tf_keras script in its own process (tf.keras 2 and Keras 3 cannot share one); its
    stdout."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", script, *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout
