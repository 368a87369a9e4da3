"""The TensorFlow-free reader must agree with Keras on every layer's params and output shapes."""

from __future__ import annotations

import pytest

from keras_cut.inspect.inspection import inspect_model
from sample_models.registry import SAMPLES
from tests.keras_reference import layer_facts, totals


def assert_matches_keras(path, keras) -> None:
    report = inspect_model(path)
    model = keras.saving.load_model(path, compile=False)
    facts = layer_facts(model)
    rows = {row.name: row for row in report.layers}
    # The reference must see every layer's calls, or the shape check below proves nothing.
    assert all(fact["output_shapes"] for fact in facts.values())
    missing = set(facts) - set(rows)
    assert not missing, f"layers Keras has that the reader lacks: {sorted(missing)}"
    for name, fact in facts.items():
        row = rows[name]
        assert row.params == fact["params"], f"{name}: params {row.params} != {fact['params']}"
        assert row.trainable_params == fact["trainable_params"], name
        ours = [list(shapes) for shapes in row.output_shapes]
        assert ours == fact["output_shapes"], f"{name}: {ours} != {fact['output_shapes']}"
    total, trainable = totals(model)
    assert (report.total_params, report.trainable_params) == (total, trainable)
    assert report.non_trainable_params == total - trainable


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_samples_match_keras(sample, keras):
    assert_matches_keras(sample.path, keras)


@pytest.mark.parametrize("name", ["mobilenetv2", "resnet50", "wrapped_mobilenet"])
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_applications_match_keras(name, suffix, app_dir, keras):
    assert_matches_keras(app_dir / f"{name}{suffix}", keras)


def test_frozen_layers_count_as_non_trainable(tmp_path, keras):
    inp = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(3, name="frozen")
    out = keras.layers.Dense(2, name="free")(hidden(inp))
    model = keras.Model(inp, out)
    hidden.trainable = False
    model.save(tmp_path / "m.keras")
    report = inspect_model(tmp_path / "m.keras")
    assert report.trainable_params == 2 * 3 + 2
    assert report.non_trainable_params == 4 * 3 + 3
    assert_matches_keras(tmp_path / "m.keras", keras)


def _final_shape(keras, tmp_path, inputs, outputs):
    """keras-cut's shape for a model's last layer (no consumer records it: the rule computes
    it) and Keras' own."""
    model = keras.Model(inputs, outputs)
    path = tmp_path / "m.keras"
    model.save(path)
    row = next(r for r in inspect_model(path).layers if r.name == model.layers[-1].name)
    (ours,) = row.output_shapes  # one call
    return [list(s) for s in ours], [list(model.outputs[0].shape)]


@pytest.mark.parametrize("build", [
    lambda k, L: ([q := k.Input((20, 12)), v := k.Input((10, 7)), kk := k.Input((10, 12))],
                  L.Attention(name="last")([q, v, kk])),
    lambda k, L: ([q := k.Input((20, 12)), v := k.Input((10, 7))],
                  L.AdditiveAttention(name="last")([q, L.Dense(12)(v), v])),
    lambda k, L: (x := k.Input((5, 6)), L.EinsumDense("abc,cd->abd", (5, 9), name="last")(x)),
    lambda k, L: (x := k.Input((6,)), L.EinsumDense("ab,bc->ac", 4, bias_axes="c",
                                                     name="last")(x)),
    lambda k, L: (x := k.Input((3, 5, 6)), L.EinsumDense("...c,cd->...d", 4, name="last")(x)),
    lambda k, L: (x := k.Input((5, 6)), L.EinsumDense("abc,cd->abd", (None, 9),
                                                       name="last")(x)),
    lambda k, L: (x := k.Input((10, 3)), L.Cropping1D((2, 3), name="last")(x)),
    lambda k, L: (x := k.Input((10, 3)), L.ZeroPadding1D((1, 2), name="last")(x)),
    lambda k, L: ([a := k.Input((6, 4)), b := k.Input((7, 4))], L.Dot(2, name="last")([a, b])),
    lambda k, L: ([a := k.Input((4,)), b := k.Input((4,))], L.Dot(1, name="last")([a, b])),
    lambda k, L: ([a := k.Input((6, 4)), b := k.Input((4, 7))],
                  L.Dot((2, 1), name="last")([a, b])),
    lambda k, L: (x := k.Input((3,), dtype="int32"),
                  L.CategoryEncoding(8, output_mode="multi_hot", name="last")(x)),
    lambda k, L: (x := k.Input((3,), dtype="int32"),
                  L.CategoryEncoding(8, output_mode="one_hot", name="last")(x)),
    lambda k, L: (x := k.Input((1,), dtype="int32"),
                  L.CategoryEncoding(8, output_mode="one_hot", name="last")(x)),
])
def test_shape_rules_match_keras(build, tmp_path, keras):
    ours, theirs = _final_shape(keras, tmp_path, *build(keras, keras.layers))
    assert ours == theirs
