"""Outputs too small for the tolerance: a pass there proves little, and the report says so
(found by a new user: a ConvNeXt whose activations stay below atol "agreed" with another)."""

from __future__ import annotations

import numpy as np
import pytest

from keras_cut.verify.verification import verify_models

pytestmark = pytest.mark.heavy


def _tiny(keras, path, seed):
    rng = np.random.default_rng(seed)
    x = keras.Input((6,), name="x")
    model = keras.Model(x, keras.layers.Dense(4, name="out")(x))
    model.get_layer("out").set_weights([rng.normal(0, 1e-8, (6, 4)).astype("float32"),
                                        np.zeros(4, "float32")])
    model.save(path)


def test_agreement_below_atol_is_flagged(tmp_path, keras):
    _tiny(keras, tmp_path / "a.keras", 0)
    _tiny(keras, tmp_path / "b.keras", 1)
    report = verify_models(tmp_path / "a.keras", tmp_path / "b.keras", samples=8)
    weak = [n for n in report.notices if "within atol" in n]
    assert len(weak) == 1 and "'out'" in weak[0] and "proves little" in weak[0]
    assert report.outputs[0].cosine_similarity < 0.9  # other weights: the cosine shows it
    # no parent value is above atol, so no relative error is defined: n/a, not 0
    assert report.outputs[0].to_dict()["max_rel_error"] is None
    strict = verify_models(tmp_path / "a.keras", tmp_path / "b.keras", samples=8,
                           tolerances=__import__("keras_cut").Tolerances(atol=0.0))
    assert not strict.passed


def test_ordinary_outputs_are_not_flagged(tmp_path, keras):
    x = keras.Input((6,), name="x")
    keras.Model(x, keras.layers.Dense(4, name="out")(x)).save(tmp_path / "m.keras")
    report = verify_models(tmp_path / "m.keras", tmp_path / "m.keras", samples=8)
    assert report.passed and not [n for n in report.notices if "within atol" in n]
    assert report.outputs[0].to_dict()["max_rel_error"] == 0.0


def test_a_float16_failure_says_the_tolerance_is_float32s():
    from keras_cut.verify.comparison import OutputCheck, check_notices

    want = np.linspace(-2, 2, 64, dtype="float16").reshape(4, 16)
    got = (want.astype("float32") * 1.001).astype("float16")  # float16 round-off, not a bug
    check = OutputCheck("out", "out", 1e-5, 1e-5)
    check.add(got, want)
    check.finish()
    (notice,) = check_notices([check])
    assert not check.passed and "'out' is float16" in notice and "--atol 1e-2" in notice
    same = OutputCheck("out", "out", 1e-5, 1e-5)
    same.add(want, want)
    same.finish()
    assert same.passed and check_notices([same]) == []
    f32 = OutputCheck("out", "out", 1e-5, 1e-5)
    f32.add(got.astype("float32"), want.astype("float32"))
    f32.finish()
    assert not f32.passed and check_notices([f32]) == []  # float32 tolerances fit float32


def test_a_float32_output_computed_in_float16_gets_the_hint_too(tmp_path, keras):
    """A mixed_float16 model whose last layer is float32 failed an exported proof by 2e-4
    with no hint (found by a new user): the compute dtypes come from the layers' policies."""
    from keras_cut.model.graph import compute_dtypes
    from keras_cut.model.opening import open_model
    from keras_cut.verify.comparison import OutputCheck, check_notices

    x = keras.Input((4,), name="x")
    h = keras.layers.Dense(8, dtype="mixed_float16", name="half")(x)
    keras.Model(x, keras.layers.Dense(2, dtype="float32", name="out")(h)).save(
        tmp_path / "mixed.keras")
    keras.Model(x, keras.layers.Dense(2, name="plain")(x)).save(tmp_path / "plain.keras")
    mixed = compute_dtypes(open_model(tmp_path / "mixed.keras", None, False, "verify")[1])
    plain = compute_dtypes(open_model(tmp_path / "plain.keras", None, False, "verify")[1])
    assert "float16" in mixed and plain == {"float32"}
    want = np.linspace(-2, 2, 64, dtype="float32").reshape(4, 16)
    check = OutputCheck("out", "out", 1e-5, 1e-5)
    check.add(want * np.float32(1.0002), want)
    check.finish()
    (notice,) = check_notices([check], mixed)
    assert "'out' is computed in float16 (mixed precision)" in notice
    assert check_notices([check], plain) == []


def test_an_all_nan_output_is_not_also_called_too_small():
    """Found by a new user: a parent output that is NaN everywhere got both "within atol of
    zero (the largest is 0)" and the NaN notice; only the NaN one is true."""
    from keras_cut.verify.comparison import OutputCheck, weak_check_notices

    nan = np.full((4, 6), np.nan, "float32")
    check = OutputCheck("out", "out", 1e-5, 1e-5)
    check.add(nan, nan)
    check.finish()
    assert check.parent_nonfinite == check.elements == 24
    assert weak_check_notices([check]) == []
    small = OutputCheck("out", "out", 1e-5, 1e-5)
    small.add(np.zeros((4, 6), "float32"), np.zeros((4, 6), "float32"))
    small.finish()
    assert len(weak_check_notices([small])) == 1  # the twin: still flagged
