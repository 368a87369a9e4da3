"""Write the sample models of registry.py, deterministically (`make samples`).

Weights are seeded random values, BatchNorm moving statistics included, so that a cut which
loses or mixes up a weight changes the outputs.
"""

from __future__ import annotations

import json
import os
import re
import sys
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sample_models.registry import BY_NAME  # noqa: E402

FIXED_DATE = "2026-01-01@00:00:00"


def cnn(keras, layers):
    inp = keras.Input(shape=(28, 28, 3), name="image")
    x = layers.Conv2D(32, (3, 3), activation="relu", name="conv2d")(inp)
    x = layers.MaxPooling2D((2, 2), name="max_pooling2d")(x)
    x = layers.Conv2D(64, (3, 3), activation="relu", name="conv2d_1")(x)
    x = layers.MaxPooling2D((2, 2), name="max_pooling2d_1")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="intermediate_dense")(x)
    out = layers.Dense(10, activation="softmax", name="classification_head")(x)
    return keras.Model(inp, out, name="cnn")


def text(keras, layers):
    inp = keras.Input(shape=(100,), dtype="int32", name="tokens")
    x = layers.Embedding(input_dim=1000, output_dim=128, name="embedding_layer")(inp)
    x = layers.LSTM(64, name="lstm")(x)
    out = layers.Dense(1, activation="sigmoid", name="score")(x)
    return keras.Model(inp, out, name="text")


def two_heads(keras, layers):
    inp = keras.Input(shape=(128,), name="features")
    x = layers.Dense(64, activation="relu", name="shared_dense")(inp)
    out1 = layers.Dense(10, activation="softmax", name="classification_output")(x)
    out2 = layers.Dense(3, activation="sigmoid", name="regression_output")(x)
    return keras.Model(inp, [out1, out2], name="two_heads")


def nested(keras, layers):
    block = keras.Sequential(
        [
            keras.Input(shape=(16, 16, 8), name="block_in"),
            layers.Conv2D(8, 3, padding="same", name="block_conv"),
            layers.BatchNormalization(name="block_bn"),
            layers.ReLU(name="block_relu"),
        ],
        name="block",
    )
    b_in = keras.Input(shape=(32, 32, 3), name="backbone_in")
    x = layers.Conv2D(8, 3, strides=2, padding="same", name="stem_conv")(b_in)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    y = block(x)
    x = layers.Add(name="backbone_add")([x, y])
    backbone = keras.Model(b_in, x, name="backbone")
    inp = keras.Input(shape=(32, 32, 3), name="image")
    x = backbone(inp)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    out = layers.Dense(5, activation="softmax", name="classifier")(x)
    return keras.Model(inp, out, name="nested")


def residual(keras, layers):
    inp = keras.Input(shape=(16, 16, 4), name="image")
    a = layers.Conv2D(8, 3, padding="same", activation="relu", name="res_a")(inp)
    b = layers.Conv2D(8, 3, padding="same", activation="relu", name="res_b")(a)
    c = layers.Conv2D(8, 3, padding="same", name="res_c")(b)
    x = layers.Add(name="res_add")([a, c])
    x = layers.ReLU(name="res_relu")(x)
    x = layers.GlobalAveragePooling2D(name="res_pool")(x)
    out = layers.Dense(3, name="res_out")(x)
    return keras.Model(inp, out, name="residual")


def sequential(keras, layers):
    return keras.Sequential(
        [
            keras.Input(shape=(20,), name="seq_input"),
            layers.Dense(32, activation="relu", name="seq_dense"),
            layers.BatchNormalization(name="seq_bn"),
            layers.Dropout(0.5, name="seq_dropout"),
            layers.Dense(16, activation="relu", name="seq_dense_1"),
            layers.Dense(2, name="seq_out"),
        ],
        name="sequential",
    )


def shared(keras, layers):
    inp = keras.Input(shape=(12,), name="features")
    first = layers.Dense(12, activation="tanh", name="pre")(inp)
    dense = layers.Dense(12, activation="tanh", name="shared_dense")
    once = dense(first)
    twice = dense(once)
    x = layers.Concatenate(name="both")([once, twice])
    out = layers.Dense(4, name="shared_out")(x)
    return keras.Model(inp, out, name="shared")


BUILDERS = {
    "cnn": cnn, "text": text, "two_heads": two_heads, "nested": nested,
    "residual": residual, "sequential": sequential, "shared": shared, "cnn_h5": cnn,
}


def randomize(model, seed: int) -> None:
    """Seeded non-trivial weights; variances stay positive."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        if "variance" in w.path:
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.normal(0.0, 0.2, shape)
        w.assign(value.astype(w.dtype))


def renumber_shared_ids(text: str) -> str:
    """Keras writes Python object ids as shared_object_id; only their equality matters."""
    ids: dict[str, str] = {}

    def stable(match: re.Match) -> str:
        return f'"shared_object_id": {ids.setdefault(match.group(1), str(len(ids) + 1))}'

    return re.sub(r'"shared_object_id": (\d+)', stable, text)


def fix_keras_zip(path: Path) -> None:
    """Pin the save date and zip timestamps so that regenerating gives the same bytes."""
    with zipfile.ZipFile(path) as zf:
        members = [(info.filename, zf.read(info.filename)) for info in zf.infolist()]
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members:
            if name == "metadata.json":
                meta = json.loads(data)
                meta["date_saved"] = FIXED_DATE
                data = json.dumps(meta).encode()
            elif name == "config.json":
                data = renumber_shared_ids(data.decode()).encode()
            zf.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data)
    os.replace(tmp, path)


def generate(out_dir: Path, names: list[str] | None = None) -> list[Path]:
    import keras
    from keras import layers

    written = []
    for i, name in enumerate(names or list(BUILDERS)):
        keras.utils.set_random_seed(1234 + i)
        model = BUILDERS[name](keras, layers)
        randomize(model, seed=1234 + i)
        path = out_dir / BY_NAME[name].file
        model.save(path)
        if path.suffix == ".keras":
            fix_keras_zip(path)
        written.append(path)
        keras.backend.clear_session()
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    for p in generate(target):
        print(f"{p}  {p.stat().st_size / 1024:.0f} KiB")
