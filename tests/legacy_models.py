"""Write tf.keras 2 `.h5` models and tf.keras 2's own answers about them (run with tf_keras).

`python -m tests.legacy_models DIR` writes NAME.h5 and NAME.npz per model: the seeded input `x`,
every layer's output on it (`act|PATH`, nested layers by path), every weight (`w|PATH|NAME`),
and NAME.json with per-layer params and output shapes as tf.keras 2 reports them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from tests.keras_private import tf_keras_own_call_indices, tf_keras_rename


def models(k):
    L = k.layers
    inp = k.Input((28, 28, 3), name="image")
    x = L.Conv2D(8, 3, activation="relu", name="conv")(inp)
    x = L.MaxPooling2D(name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(16, activation="relu", name="intermediate_dense")(x)
    yield "cnn", k.Model(inp, L.Dense(4, activation="softmax", name="head")(x))

    yield "sequential", k.Sequential([
        L.Dense(16, activation="relu", input_shape=(10,), name="dense"),
        L.BatchNormalization(name="bn"), L.Dropout(0.3, name="dropout"),
        L.Dense(3, name="out")], name="seq")

    inp = k.Input((12, 12, 4), name="image")
    a = L.Conv2D(6, 3, padding="same", activation="relu", name="res_a")(inp)
    b = L.Conv2D(6, 3, padding="same", activation="relu", name="res_b")(a)
    c = L.Conv2D(6, 3, padding="same", name="res_c")(b)
    x = L.GlobalAveragePooling2D(name="gap")(L.Add(name="res_add")([a, c]))
    yield "residual", k.Model(inp, L.Dense(2, name="out")(x))

    yield "mobilenetv2", k.applications.MobileNetV2(
        input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=5)

    b_in = k.Input((16, 16, 3), name="b_in")
    y = L.Conv2D(4, 3, name="c1")(b_in)
    y = L.BatchNormalization(name="bn")(y)
    backbone = k.Model(b_in, L.ReLU(name="relu")(y), name="backbone")
    inp = k.Input((16, 16, 3), name="image")
    z = L.GlobalAveragePooling2D(name="gap")(backbone(inp))
    shared = L.Dense(4, activation="tanh", name="shared")
    yield "nested", k.Model(inp, L.Add(name="add")([shared(z), shared(shared(z))]))

    backbone = k.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None,
                                          include_top=False)
    tf_keras_rename(backbone, "backbone")
    inp = k.Input((96, 96, 3), name="image")
    x = L.GlobalAveragePooling2D(name="gap")(backbone(inp))
    yield "nested_mobilenet", k.Model(inp, L.Dense(3, name="head")(x))


def first_call_output(owner, layer):
    """The layer's first call inside `owner` (tf.keras 2 keeps every call's node)."""
    for i in tf_keras_own_call_indices(owner, layer):
        return layer.get_output_at(i)
    raise AssertionError(layer.name)


def visit(k, owner, prefix, feed, arrays, facts):
    """Every layer's output, params and weights as tf.keras 2 sees them, nested ones by path."""
    tensors = [first_call_output(owner, layer) for layer in owner.layers]
    outs = k.Model(owner.inputs, tensors).predict(feed, verbose=0)
    for layer, tensor, value in zip(owner.layers, tensors, outs, strict=True):
        path = prefix + layer.name
        arrays[f"act|{path}"] = value
        facts[path] = {"params": layer.count_params(),
                       "trainable": int(sum(np.prod(w.shape) for w in layer.trainable_weights)),
                       "shape": list(tensor.shape)}
        for w in layer.weights:
            arrays[f"w|{path}|{w.name.split('/')[-1].split(':')[0]}"] = w.numpy()
        if isinstance(layer, k.Model):
            visit(k, layer, path + "/", feed, arrays, facts)  # backbones take the model input


def write(out: Path) -> None:
    import tf_keras as k

    rng = np.random.default_rng(0)
    for name, model in models(k):
        for w in model.weights:
            shape = tuple(w.shape)
            value = rng.uniform(0.5, 1.5, shape) if "variance" in w.name else rng.normal(
                0, 0.2, shape)
            w.assign(value.astype("float32"))
        model.save(out / f"{name}.h5")
        x = rng.uniform(-1, 1, (4, *model.input_shape[1:])).astype("float32")
        arrays = {"x": x, "y": model.predict(x, verbose=0)}
        facts = {}

        visit(k, model, "", x, arrays, facts)
        np.savez(out / f"{name}.npz", **arrays)
        (out / f"{name}.json").write_text(json.dumps(facts))


if __name__ == "__main__":
    write(Path(sys.argv[1]))
