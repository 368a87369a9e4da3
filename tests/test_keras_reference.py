"""The tests' own oracle, checked: the replay in `keras_reference.activations` against Keras'
public feature-extraction recipe (`keras.Model(inputs, layer.output)`, the seed recipe) on
every layer call that recipe can reach; and each private attribute the tests use still exists
(`tests/keras_private.py`), by name."""

from __future__ import annotations

import numpy as np
import pytest

from tests import keras_private
from tests.keras_reference import activations, random_inputs

pytestmark = pytest.mark.heavy


@pytest.fixture(scope="module")
def models(keras):
    L = keras.layers

    def backbone():
        inner_in = keras.Input((8, 8, 3), name="inner_in")
        c = L.Conv2D(4, 3, padding="same", name="c")(inner_in)
        return keras.Model(inner_in, L.ReLU(name="r")(L.BatchNormalization(name="bn")(c)),
                           name="backbone")

    inner = backbone()
    x = keras.Input((8, 8, 3), name="image")
    pre = L.Conv2D(3, 1, name="pre")(x)
    y = L.GlobalAveragePooling2D(name="gap")(L.Add(name="add")([inner(pre), inner(x)]))
    nested = keras.Model(x, L.Dense(2, name="head")(y), name="twice")
    x1 = keras.Input((8, 8, 3), name="image")
    z = L.GlobalAveragePooling2D(name="gap")(backbone()(L.Conv2D(3, 1, name="pre")(x1)))
    once = keras.Model(x1, L.Dense(2, name="head")(z), name="once")
    mobilenet = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35,
                                               weights=None, classes=4)
    return {"twice": nested, "once": once, "mobilenet": mobilenet}


def _public_reachable(model):
    """(path, layer, fed-by) for layers whose output the public recipe can name: top-level
    layers called once with one output; inside a nested model called once, its layers."""
    found = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer" or keras_private.call_count(layer) != 1 or \
                isinstance(layer.output, (list, dict)):
            continue
        if not hasattr(layer, "layers"):  # a nested model's `.output` is its own graph's
            found.append((layer.name, layer, None))
        else:
            for inner in layer.layers:
                if type(inner).__name__ != "InputLayer" and keras_private.call_count(inner) == 1 \
                        and not isinstance(inner.output, (list, dict)):
                    found.append((f"{layer.name}/{inner.name}", inner, layer))
    return found


@pytest.mark.parametrize("name", ["twice", "once", "mobilenet"])
def test_the_replay_oracle_agrees_with_keras_feature_extraction(models, keras, name):
    model = models[name]
    data = random_inputs(model, batch=3, seed=0)
    record = activations(model, data)
    checked = 0
    for path, layer, nested in _public_reachable(model):
        if nested is None:
            want = keras.Model(model.inputs, layer.output)(data)
        else:  # inside the nested model, fed what the outer model gave it
            node = keras_private.own_calls(model, nested)[0]
            fed_by = keras_private.producer(node.input_tensors[0])
            feed = record[(fed_by.name, 0)][0]
            want = keras.Model(nested.inputs, layer.output)(feed)
        np.testing.assert_allclose(record[(path, 0)][0], np.asarray(want), rtol=1e-5,
                                   atol=1e-5, err_msg=path)
        checked += 1
    assert checked >= {"mobilenet": 100, "once": 6, "twice": 4}[name], checked
    # the whole model: the replay ends where Keras' own call ends
    np.testing.assert_allclose(record[("", 0)][0], np.asarray(model(data)), rtol=1e-5,
                               atol=1e-5)


def test_the_comparison_catches_a_wrong_oracle(models, keras):
    """The check above can fail: a replay that skips one layer's work disagrees."""
    model = models["mobilenet"]
    data = random_inputs(model, batch=2, seed=1)
    record = activations(model, data)
    layer = model.get_layer("Conv1")
    want = np.asarray(keras.Model(model.inputs, layer.output)(data))
    assert not np.allclose(record[("bn_Conv1", 0)][0], want, atol=1e-5)


def test_every_private_attribute_the_tests_use_exists(models, keras):
    import tf_keras

    model, inner = models["twice"], models["twice"].get_layer("backbone")
    checks = {
        "Sequential._functional": lambda: keras_private.own_graph(
            keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])) is not None,
        "Functional._nodes_by_depth": lambda: bool(keras_private.nodes_by_depth(model)),
        "Functional._nodes": lambda: len(keras_private.own_calls(model, inner)) == 2,
        "Operation._inbound_nodes": lambda: keras_private.call_count(inner) >= 2,
        "Node.arguments.fill_in": lambda: keras_private.fill_in(
            keras_private.own_calls(model, model.get_layer("pre"))[0],
            {id(model.inputs[0]): "fed"})[0][0] == "fed",
        "KerasTensor._keras_history": lambda: keras_private.producer(model.output).name == "head",
        "tf_keras Functional._network_nodes": lambda: _tf_keras_calls(tf_keras) == [0],
        "tf_keras Layer._name": lambda: _tf_keras_rename(tf_keras),
    }
    assert set(checks) == set(keras_private.TEST_PRIVATE_ATTRIBUTES)
    broken = [name for name, check in checks.items() if not _holds(check)]
    assert broken == [], f"private attributes the tests use are gone: {broken}"


def _holds(check) -> bool:
    try:
        return bool(check())
    except (AttributeError, KeyError, TypeError):
        return False


def _tf_keras_model(tf_keras):
    x = tf_keras.Input((2,))
    return tf_keras.Model(x, tf_keras.layers.Dense(1, name="d")(x))


def _tf_keras_calls(tf_keras):
    model = _tf_keras_model(tf_keras)
    return keras_private.tf_keras_own_call_indices(model, model.get_layer("d"))


def _tf_keras_rename(tf_keras):
    model = _tf_keras_model(tf_keras)
    keras_private.tf_keras_rename(model, "renamed")
    return model.name == "renamed"
