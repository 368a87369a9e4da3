"""How `--locate` ties an artifact tensor's name to a Keras layer call: TensorFlow's
unique-name rule replayed over Keras' call order (no TensorFlow here). The scopes asserted are
the ones real exports carry (tests/export/test_locate.py runs them against artifacts)."""

from __future__ import annotations

import numpy as np

from keras_cut.core.address import CallAddress
from keras_cut.verify.locate import best_scopes, layouts, scope_names, tensor_calls


def call(layer, n=0, context=()):
    return CallAddress(context, layer, n)


def test_clashing_automatic_names():
    """Layers conv2d and conv2d_1: TensorFlow puts conv2d's ops in conv2d_1, and conv2d_1's in
    conv2d_1_2 (what cnn.onnx and cnn.tflite carry)."""
    scopes = scope_names([call("conv2d"), call("max_pooling2d"), call("conv2d_1")], 2)
    assert scopes[("conv2d_1",)] == call("conv2d")
    assert scopes[("conv2d_1_2",)] == call("conv2d_1")
    assert scopes[("max_pooling2d_1",)] == call("max_pooling2d")


def test_a_shared_layers_second_call_and_nested_models():
    scopes = scope_names([call("shared_dense", 0), call("shared_dense", 1)], 2)
    assert scopes[("shared_dense_1",)] == call("shared_dense", 0)
    assert scopes[("shared_dense_3",)] == call("shared_dense", 1)
    inner = (("backbone", 0),)
    nested = scope_names([call("stem", 0, inner), call("block_conv", 0, inner + (("block", 0),)),
                          call("backbone"), call("pool")], 2)
    assert nested[("backbone_1",)] == call("backbone")
    assert nested[("backbone_1", "stem_1")] == call("stem", 0, inner)
    assert nested[("backbone_1", "block_1", "block_conv_1")] == \
        call("block_conv", 0, inner + (("block", 0),))
    assert nested[("pool_1",)] == call("pool")


def test_names_fused_and_indexed_and_unscoped():
    scopes = scope_names([call("res_add"), call("res_relu")], 2)
    fused = "residual_1/res_relu_1/Relu;residual_1/res_add_1/Add"
    assert tensor_calls(fused, scopes) == [call("res_relu"), call("res_add")]
    assert tensor_calls("residual_1/res_add_1/Add:0", scopes) == [call("res_add")]
    assert tensor_calls("residual_1/res_add_1/inner/op__12:0", scopes) == [call("res_add")]
    assert tensor_calls("Identity:0", scopes) == []
    assert tensor_calls("Transpose__61:0", scopes) == []


def test_the_rule_that_names_more_wins():
    """A TensorFlow that entered each scope once would name conv2d's ops `conv2d`."""
    calls = [call("conv2d"), call("conv2d_1")]
    once = ["m_1/conv2d/Relu", "m_1/conv2d_1/Relu"]
    assert best_scopes(calls, once)[("conv2d",)] == call("conv2d")
    twice = ["m_1/conv2d_1/Relu", "m_1/conv2d_1_2/Relu"]
    assert best_scopes(calls, twice)[("conv2d_1_2",)] == call("conv2d_1")


def test_layouts():
    nchw = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    (only,) = layouts(nchw, (2, 4, 5, 3))
    assert only[1] == "channels first" and np.array_equal(only[0], np.moveaxis(nchw, 1, -1))
    square = np.zeros((1, 4, 4, 4))
    assert [layout for _, layout in layouts(square, (1, 4, 4, 4))] == [
        None, "channels first", "channels last"]
    nhwc = np.zeros((2, 4, 5, 3))  # LiteRT inside a channels_first model
    assert [layout for _, layout in layouts(nhwc, (2, 3, 4, 5))] == ["channels last"]
    assert layouts(np.zeros((2, 7)), (2, 8)) == []
