"""`cut` makes submodels that compute exactly what the parent computes at the cut points.

The reference is `keras_reference.activations`, an eager walk over Keras' own node graph that
shares no code with keras_cut. Each submodel is reloaded from its file before it is run.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from keras_cut.cut.cutting import cut_model
from sample_models.registry import BY_NAME
from tests.keras_private import producer
from tests.keras_reference import activations, parse_source, random_inputs

SAMPLE_CASES = [
    # (sample, --output-layer list, --input-layer list)
    ("cnn", ["intermediate_dense"], []),
    ("cnn", ["flatten", "intermediate_dense"], []),
    ("cnn", [], ["intermediate_dense"]),
    ("cnn", ["intermediate_dense"], ["max_pooling2d_1"]),
    ("cnn_h5", ["intermediate_dense"], []),
    ("cnn_h5", [], ["flatten"]),
    ("text", ["embedding_layer"], []),
    ("text", ["lstm"], []),
    ("text", [], ["embedding_layer"]),
    ("two_heads", ["regression_output", "classification_output"], []),
    ("two_heads", [], ["shared_dense"]),
    ("nested", ["backbone/block/block_conv"], []),
    ("nested", ["backbone/stem_bn", "pool"], []),
    ("nested", [], ["backbone/stem_relu"]),
    ("nested", ["backbone/block/block_bn"], ["backbone/stem_conv"]),
    ("nested", [], ["backbone"]),
    ("nested", ["backbone"], []),
    ("residual", ["res_add"], []),
    ("residual", [], ["res_b"]),
    ("residual", ["res_relu"], ["res_c"]),
    ("sequential", ["seq_bn"], []),
    ("sequential", [], ["seq_dropout"]),
    ("sequential", ["seq_dense_1"], ["seq_dense"]),
    ("shared", ["shared_dense@0"], []),
    ("shared", ["shared_dense@1"], []),
    ("shared", [], ["shared_dense@0"]),
    ("shared", ["both"], ["pre"]),
]


def check_cut(keras, parent_path, out_path, outputs, inputs, **options):
    result = cut_model(parent_path, out_path, outputs, inputs, **options)
    parent = keras.saving.load_model(parent_path, compile=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sub = keras.saving.load_model(out_path, compile=False)
    # Keras warns when arrays are missing, unused or do not fit ("could not be loaded", ...).
    noisy = [str(w.message) for w in caught
             if any(k in str(w.message).lower() for k in ("load", "variable", "weight"))]
    assert not noisy, noisy
    data = random_inputs(parent, batch=4, seed=0)
    record = activations(parent, data)
    parent_inputs = {producer(kt).name: x for kt, x in zip(parent.inputs, data, strict=True)}

    feed = []
    for tensor in result.inputs:
        if tensor.role == "parent_input":
            feed.append(parent_inputs[tensor.source])
        else:
            path, call, index = parse_source(tensor.source)
            feed.append(record[(path, call)][index])
    assert [t.name for t in sub.inputs] == [t.name for t in result.inputs]
    # Eager, like the reference: a compiled predict() may fuse ops and round differently.
    got = sub(feed if len(feed) > 1 else feed[0], training=False)
    got = [np.asarray(g) for g in (got if isinstance(got, (list, tuple)) else [got])]
    assert len(got) == len(result.outputs)
    for value, tensor in zip(got, result.outputs, strict=True):
        path, call, index = parse_source(tensor.source)
        expected = record[(path, call)][index]
        assert value.shape == expected.shape, tensor.source
        np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6, err_msg=tensor.source)
    assert_weights_identical(parent, sub)
    return result, sub


def all_layers(model, prefix=""):
    for layer in model.layers:
        yield prefix + layer.name, layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer, prefix + layer.name + "/")


def assert_weights_identical(parent, sub) -> None:
    """Every weight the submodel keeps is bit-identical to the parent's (BatchNorm stats too)."""
    by_name: dict[str, list] = {}
    for _, layer in all_layers(parent):
        by_name.setdefault(layer.name, []).append(layer)
    checked = 0
    for _, layer in all_layers(sub):
        if hasattr(layer, "layers") or not layer.weights:
            continue
        (original,) = by_name[layer.name]
        assert len(layer.weights) == len(original.weights)
        for w, p in zip(layer.weights, original.weights, strict=True):
            a, b = np.asarray(w.numpy()), np.asarray(p.numpy())
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), w.path
            checked += 1
    assert checked > 0 or not sub.weights


@pytest.mark.parametrize("sample,outputs,inputs", SAMPLE_CASES,
                         ids=[f"{s}:{'+'.join(o) or 'end'}<-{'+'.join(i) or 'inputs'}"
                              for s, o, i in SAMPLE_CASES])
@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_sample_cuts_match_parent(sample, outputs, inputs, ext, tmp_path, keras):
    check_cut(keras, BY_NAME[sample].path, tmp_path / f"sub{ext}", outputs, inputs)


@pytest.mark.parametrize("sample,outputs,inputs", [
    ("cnn", ["intermediate_dense"], []),
    ("nested", [], ["backbone/stem_relu"]),
    ("residual", [], ["res_b"]),
    ("sequential", ["seq_bn"], []),
])
def test_h5_output(sample, outputs, inputs, tmp_path, keras):
    check_cut(keras, BY_NAME[sample].path, tmp_path / "sub.h5", outputs, inputs)


def test_skip_connection_crossing_a_head_cut_becomes_an_input(tmp_path, keras):
    result, sub = check_cut(keras, BY_NAME["residual"].path, tmp_path / "h.keras", [], ["res_b"])
    assert [(t.name, t.role) for t in result.inputs] == [("res_b", "cut_input"),
                                                         ("res_a", "crossing")]
    assert any("res_a" in n and "crosses the cut" in n for n in result.notices)
    assert {layer.name for layer in sub.layers} == {"res_b", "res_a", "res_c", "res_add",
                                                    "res_relu", "res_pool", "res_out"}


def test_prefix_keeps_only_what_outputs_need(tmp_path, keras):
    result, sub = check_cut(keras, BY_NAME["two_heads"].path, tmp_path / "p.keras",
                            ["regression_output"], [])
    assert [layer.name for layer in sub.layers] == ["features", "shared_dense",
                                                    "regression_output"]
    assert "classification_output" in result.dropped


def test_nested_model_inside_the_cut_stays_nested(tmp_path, keras):
    _, sub = check_cut(keras, BY_NAME["nested"].path, tmp_path / "n.keras", ["pool"], [])
    assert [layer.name for layer in sub.layers] == ["image", "backbone", "pool"]
    _, opened = check_cut(keras, BY_NAME["nested"].path, tmp_path / "o.keras",
                          ["backbone/backbone_add"], ["backbone/stem_relu"])
    names = [layer.name for layer in opened.layers]
    assert "block" in names and "backbone" not in names  # backbone opened, block kept whole


def test_freeze_persists(tmp_path, keras):
    result, sub = check_cut(keras, BY_NAME["nested"].path, tmp_path / "f.keras", ["pool"], [],
                            freeze=True)
    assert result.frozen and result.trainable_params == 0
    assert sub.count_params() > 0 and not sub.trainable_weights
    _, sub_h5 = check_cut(keras, BY_NAME["cnn"].path, tmp_path / "f.h5",
                          ["intermediate_dense"], [], freeze=True)
    assert not sub_h5.trainable_weights


# --- real architectures nobody here wrote -------------------------------------------------

APP_CASES = [
    ("resnet50", ["conv4_block6_out"], []),
    ("resnet50", [], ["conv4_block4_1_conv"]),
    ("resnet50", ["conv4_block6_out"], ["conv3_block4_out"]),
    ("mobilenetv2", ["block_13_expand"], []),
    ("mobilenetv2", [], ["block_13_expand"]),
    ("wrapped_mobilenet", ["backbone/block_13_expand"], []),
    ("wrapped_mobilenet", [], ["backbone/block_6_project_BN"]),
    ("wrapped_mobilenet", ["backbone/block_5_add"], ["backbone/block_3_project_BN"]),
]


@pytest.mark.parametrize("name,outputs,inputs", APP_CASES,
                         ids=[f"{n}:{'+'.join(o) or 'end'}<-{'+'.join(i) or 'inputs'}"
                              for n, o, i in APP_CASES])
def test_application_cuts_match_parent(name, outputs, inputs, app_dir, tmp_path, keras):
    result, _ = check_cut(keras, app_dir / f"{name}.keras", tmp_path / "sub.keras",
                          outputs, inputs)
    if name == "resnet50" and inputs == ["conv4_block4_1_conv"]:
        # The block's skip connection (conv4_block3_out) crosses the cut: Keras' own API fails.
        assert [t.source for t in result.inputs] == ["conv4_block4_1_conv", "conv4_block3_out"]


def test_h5_application_parent(app_dir, tmp_path, keras):
    check_cut(keras, app_dir / "mobilenetv2.h5", tmp_path / "sub.h5", [], ["block_13_expand"])
