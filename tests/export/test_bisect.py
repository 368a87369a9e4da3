"""`--bisect`: fresh exports of ever longer prefixes, proven one after another, pin where a
converter goes wrong, in O(log n) exports, even where no name ties the artifact's tensors to
layers. The converter is made wrong on purpose (it writes res_c's bias wrong whenever res_c is
in what it converts, and strips every tensor name), so the culprit is known."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sample_models.registry import BY_NAME
from tests.cli_helpers import run_cli
from tests.export.artifacts import tamper
from tests.export.test_locate import strip_names

pytestmark = pytest.mark.heavy
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

RESIDUAL = BY_NAME["residual"].path
LAYERS = 7  # the residual sample's layers (its input aside)


@pytest.fixture
def wrong_converter(monkeypatch, keras):
    """A converter that writes res_c's bias wrong where it converts res_c, and keeps no
    tensor name."""
    from keras_cut.backend.keras import exporting

    real = exporting.export_file
    bias = keras.saving.load_model(RESIDUAL, compile=False).get_layer("res_c").get_weights()[1]

    def convert(cut_file, path, fmt, *args, **kwargs):
        order = real(cut_file, path, fmt, *args, **kwargs)
        if Path(path).read_bytes().find(bias.astype("<f4").tobytes()) >= 0:
            tamper(Path(path), RESIDUAL, "res_c")
        strip_names(Path(path), Path(path))
        return order

    monkeypatch.setattr(exporting, "export_file", convert)


def test_bisection_pins_the_layer_a_converter_gets_wrong(wrong_converter, tmp_path, capsys):
    result = run_cli(capsys, "export", RESIDUAL, "-o", tmp_path / "m.onnx", "--bisect",
                     "--json")
    assert result.code == 1, result.err
    found = json.loads(result.out)["bisect"]
    assert found["first_failing_layer"] == "res_c"
    assert found["first_failing_class"] == "Conv2D"
    assert found["whole_fresh_export_passes"] is False
    assert found["exports"] <= math.ceil(math.log2(LAYERS)) + 1
    verdicts = {t["last"]: t["proven"] for t in found["tried"]}
    assert verdicts["res_out"] is False  # the whole, first
    assert all(proven for last, proven in verdicts.items() if last in ("res_a", "res_b"))
    # every prefix's outputs are the tensors later layers read: res_a feeds res_add too
    res_b = next((t for t in found["tried"] if t["last"] == "res_b"), None)
    if res_b is not None:
        assert sorted(res_b["outputs"]) == ["res_a", "res_b"]


def test_a_file_damaged_after_export_is_not_the_converter(tmp_path, capsys, keras):
    from keras_cut.export.exporting import export_model

    good = tmp_path / "m.onnx"
    export_model(RESIDUAL, good)
    tamper(good, RESIDUAL, "res_b")
    result = run_cli(capsys, "verify", RESIDUAL, good, "--bisect", "--json")
    assert result.code == 1, result.err
    report = json.loads(result.out)
    assert report["locate"]["first_failing_layer"] == "res_b"  # the file's own tensors
    found = report["bisect"]
    assert found["whole_fresh_export_passes"] is True and found["exports"] == 1
    assert found["first_failing_layer"] is None


def test_prefix_outputs_follow_branches():
    """Every layer up to the point, with an output for each tensor read after it."""
    from keras_cut.export.bisect import _frontiers
    from keras_cut.model.flatgraph import FlatGraph
    from keras_cut.model.opening import open_model

    _, graph = open_model(RESIDUAL, None, False, "read")
    flat = FlatGraph(graph)
    calls = [c for c in flat.nodes if not flat.layer(c).is_input]
    labels = [flat.label(c) for c in calls]
    ends = dict(zip(labels, _frontiers(flat, calls, [flat.top.outputs[0]]), strict=True))
    assert ends["res_a"] == ["res_a"]
    assert ends["res_b"] == ["res_a", "res_b"] and ends["res_c"] == ["res_a", "res_c"]
    assert ends["res_add"] == ["res_add"] and ends["res_out"] == ["res_out"]
    assert np.array_equal(labels, ["res_a", "res_b", "res_c", "res_add", "res_relu",
                                   "res_pool", "res_out"])


def perturbing(monkeypatch, layer: str):
    """A converter that computes `layer` wrong (its last weight + 0.5) wherever it converts
    it, named as it is: the artifact's own names survive."""
    from keras_cut.backend.keras import exporting, loading

    real = exporting.export_file

    def convert(model_path, target, fmt, unsafe=False, custom_objects=None, *args,
                model=None, **kwargs):
        fresh = loading.load_model(model_path, unsafe=unsafe, custom_objects=custom_objects)
        for candidate in fresh.layers:
            if candidate.name == layer:
                weights = candidate.get_weights()
                candidate.set_weights(weights[:-1] + [weights[-1] + 0.5])
        return real(model_path, target, fmt, unsafe, custom_objects, *args, model=fresh,
                    **kwargs)

    monkeypatch.setattr(exporting, "export_file", convert)


def test_prefixes_start_from_the_inputs_they_read_and_keep_several_outputs_of_a_layer(
        monkeypatch, tmp_path, capsys, keras):
    """Two inputs: a prefix ending before the second is read starts from the first only (cut
    refuses an input not on the way). An LSTM's state outputs, several of one call, are each a
    prefix output."""
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    da = keras.layers.Dense(4, name="da")(a)
    db = keras.layers.Dense(4, name="db")(b)
    mix = keras.layers.Add(name="mix")([da, db])
    two = keras.Model([a, b], keras.layers.Dense(2, name="out")(mix), name="two")
    x = keras.Input((3, 2), name="x")
    seq, h, c = keras.layers.LSTM(4, return_state=True, name="lstm")(x)
    from_h = keras.layers.Dense(4, name="from_h")(h)
    joined = keras.layers.Concatenate(name="join")([seq, from_h, c])
    states = keras.Model(x, keras.layers.Dense(2, name="out")(joined), name="states")
    for model, culprit in ((two, "da"), (states, "from_h")):
        rng = np.random.default_rng(0)
        for w in model.weights:
            w.assign(rng.normal(0, 0.5, tuple(w.shape)).astype("float32"))
        model.save(tmp_path / f"{model.name}.keras")
        with monkeypatch.context() as patch:
            perturbing(patch, culprit)
            result = run_cli(capsys, "export", tmp_path / f"{model.name}.keras", "-o",
                             tmp_path / f"{model.name}.onnx", "--bisect", "--json")
        assert result.code == 1, result.err
        found = json.loads(result.out)["bisect"]
        assert found["first_failing_layer"] == culprit, found["tried"]
        assert all(t["problem"] is None for t in found["tried"]), found["tried"]
        assert found["exports"] <= math.ceil(math.log2(found["layers"])) + 1


def test_bisect_says_itself_why_it_cannot_apply(tmp_path, capsys):
    from tests.cli_helpers import assert_one_line_error

    assert_one_line_error(run_cli(capsys, "verify", RESIDUAL, RESIDUAL, "--bisect"),
                          "--bisect", "artifact")
    assert_one_line_error(run_cli(capsys, "export", RESIDUAL, "-o", tmp_path / "m.onnx",
                                  "--no-verify", "--bisect"), "--bisect", "--verify")
    assert_one_line_error(run_cli(capsys, "verify", tmp_path / "g.npz", tmp_path / "m.onnx",
                                  "--bisect"), "--bisect", "golden")
    assert not list(tmp_path.iterdir())
