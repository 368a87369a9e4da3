"""A corpus of bad model files, generated from the samples (`python -m tests.corpus DIR`).

Each entry says what `inspect` must do with it (fail, or succeed with findings) and which words
the one-line error of `inspect`, `cut` and `verify` must contain.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from sample_models.registry import BY_NAME

CNN = BY_NAME["cnn"].path
CNN_H5 = BY_NAME["cnn_h5"].path


@dataclass
class BadFile:
    name: str
    path: Path
    words: list[str]  # what every command's error must mention
    inspect_ok: bool = False  # inspect reads it (and reports findings) rather than failing
    load_words: list[str] = field(default_factory=list)  # extra words for cut/verify
    # `cut --output-layer flatten` succeeds: nothing it keeps is broken and it runs nothing;
    # its notices on stderr name these words (what loading the submodel will need).
    cut_ok: bool = False
    cut_words: list[str] = field(default_factory=list)


def rezip(dst: Path, src: Path = CNN, drop=(), replace=None, weights=None, extra=None) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = (replace or {}).get(info.filename, zin.read(info.filename))
            if info.filename == "model.weights.h5" and weights:
                buffer = io.BytesIO(data)
                with h5py.File(buffer, "a") as h5:
                    weights(h5)
                data = buffer.getvalue()
            zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


def cnn_config() -> dict:
    return json.loads(zipfile.ZipFile(CNN).read("config.json"))


def build(folder: Path) -> list[BadFile]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out: list[BadFile] = []

    def add(name: str, words: list[str], **kwargs) -> Path:
        path = folder / name
        out.append(BadFile(name, path, words, **kwargs))
        return path

    add("missing.keras", ["no such file"])
    add("folder.keras", ["directory"]).mkdir(exist_ok=True)
    add("empty.keras", ["empty"]).write_bytes(b"")
    add("random.keras", ["not a Keras model file"]).write_bytes(rng.bytes(4096))
    add("random.h5", ["not a Keras model file"]).write_bytes(rng.bytes(4096))
    data = CNN.read_bytes()
    add("truncated.keras", ["damaged or truncated"]).write_bytes(data[: len(data) // 2])
    data = CNN_H5.read_bytes()
    add("truncated.h5", ["damaged or truncated"]).write_bytes(data[: len(data) // 3])
    rezip(add("no_config.keras", ["no config.json"]), drop={"config.json"})
    rezip(add("invalid_json.keras", ["not valid JSON"]), replace={"config.json": b"{oops"})
    rezip(add("not_a_model.keras", ["not a serialized Keras model"]),
          replace={"config.json": b'{"hello": "world"}'})
    config = cnn_config()
    config["config"]["layers"][3]["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = (
        "ghost_layer"
    )
    rezip(add("ghost_layer.keras", ["ghost_layer", "does not have"]),
          replace={"config.json": json.dumps(config)})
    mismatch = ["do not match the architecture"]
    rezip(add("weights_missing.keras", ["conv2d_1"], inspect_ok=True, load_words=mismatch),
          weights=lambda h5: h5.__delitem__("layers/conv2d_1/vars/0"))
    rezip(add("weights_extra.keras", ["conv2d_1"], inspect_ok=True, load_words=mismatch),
          weights=lambda h5: h5["layers/conv2d_1/vars"].create_dataset(
              "2", data=np.zeros(3, "float32")))

    def misshape(h5):
        del h5["layers/dense/vars/0"]
        h5["layers/dense/vars"].create_dataset("0", data=np.zeros((7, 128), "float32"))

    rezip(add("weights_misshaped.keras", ["intermediate_dense"], inspect_ok=True,
              load_words=mismatch, cut_ok=True),  # the cut at flatten drops the layer
          weights=misshape)
    with h5py.File(add("weights_only.weights.h5", ["only weights"]), "w") as h5:
        h5.create_group("layers/dense/vars").create_dataset("0", data=np.zeros(3))
        h5.create_group("vars")
    with h5py.File(add("legacy_weights_only.h5", ["only weights"]), "w") as h5:
        h5.attrs["layer_names"] = [b"dense"]
        h5.create_group("dense").attrs["weight_names"] = [b"dense/kernel:0"]
    config = cnn_config()
    layer = config["config"]["layers"][-1]
    layer.update(module="acme.layers", class_name="Scale", registered_name="acme>Scale")
    rezip(add("custom_class.keras", ["classification_head", "acme>Scale"], inspect_ok=True,
              load_words=["--custom-objects"], cut_ok=True),  # the cut drops the custom layer
          replace={"config.json": json.dumps(config)})
    config = cnn_config()
    flatten = config["config"]["layers"][5]
    flatten.update(class_name="Lambda", module="keras.layers")
    flatten["config"]["function"] = {"class_name": "__lambda__",
                                     "config": {"code": "4wEAAAAAAAAA", "defaults": None}}
    rezip(add("lambda.keras", ["flatten", "Lambda"], inspect_ok=True, load_words=["--unsafe"],
              cut_ok=True, cut_words=["flatten", "Lambda", "safe_mode=False"]),
          replace={"config.json": json.dumps(config)})
    path = add("garbage_config.h5", ["model_config", "not valid JSON"])
    shutil.copy(CNN_H5, path)
    with h5py.File(path, "a") as h5:
        h5.attrs["model_config"] = "}}garbage{{"
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "bad_models")
    for bad in build(target):
        print(bad.path)
