"""The TensorFlow-free reader must agree with Keras on every layer's params and output shapes."""

from __future__ import annotations

import pytest

from keras_cut.inspection import inspect_model
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
