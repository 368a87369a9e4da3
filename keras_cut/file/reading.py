"""Reading a saved model file without TensorFlow: `.keras` or `.h5`, tf.keras 2 configs
normalised for Keras 3 on the way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keras_cut.backend.runtime import FORMATS, artifact_format
from keras_cut.core.errors import ModelFileError
from keras_cut.file.keras_zip import read_keras_zip
from keras_cut.file.legacy_h5 import read_legacy_h5
from keras_cut.file.modelfile import H5_MAGIC, ModelFile
from keras_cut.file.zipmember import ZIP_MAGIC


def read_model_file(path: str | Path, weights: bool = True) -> ModelFile:
    """Open `path` and return its config, metadata and weight index; raise ModelFileError.

    A tf.keras 2 config is normalised into what Keras 3 accepts, each change recorded. With
    `weights=False` a `.keras` file's weights are not indexed (its layer names are enough for
    shell completion; nothing else may use such a ModelFile)."""
    model = _read_model_file(Path(path), weights)
    if is_legacy(model.config, model.keras_version):
        from keras_cut.layers import legacy

        model.config, model.legacy_changes = legacy.normalize(model.config, str(model.path))
        model.legacy = True
    return model


def is_legacy(config: dict[str, Any], keras_version: str | None) -> bool:
    """A tf.keras 2 (Keras 2.x) config: its version says so, or its calls are list-form."""
    if keras_version and keras_version.split(".")[0] in ("1", "2"):
        return True
    return any(isinstance(node, list) for node in _all_nodes(config))


def _all_nodes(config: dict[str, Any]) -> list[Any]:
    found = []
    stack = [config]
    while stack:
        model = stack.pop()
        inner = model.get("config") if isinstance(model, dict) else None
        if not isinstance(inner, dict) or not isinstance(inner.get("layers"), list):
            continue
        for layer in inner["layers"]:
            if isinstance(layer, dict):
                nodes = layer.get("inbound_nodes")
                if isinstance(nodes, list):  # untrusted: anything else is reported later
                    found.extend(nodes)
                stack.append(layer)
    return found


def _read_model_file(path: Path, weights: bool = True) -> ModelFile:
    if not path.exists():
        raise ModelFileError(f"{path}: no such file; check the path")
    artifact = artifact_format(path)
    if artifact is not None:
        raise ModelFileError(
            f"{path}: is an exported artifact ({FORMATS[artifact].name}), not a Keras model; "
            "give the .keras or .h5 file it was exported from (an artifact "
            "keras-cut exported is checked with `keras-cut verify PARENT ARTIFACT`)"
        )
    if path.is_dir():
        raise ModelFileError(
            f"{path}: is a directory without a saved_model.pb (not a SavedModel keras-cut "
            "exported either); give a .keras or .h5 model file"
        )
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not head:
        raise ModelFileError(f"{path}: the file is empty; re-save the model")
    if head.startswith(ZIP_MAGIC):
        return read_keras_zip(path, weights)
    if head == H5_MAGIC:
        return read_legacy_h5(path)
    raise ModelFileError(
        f"{path}: not a Keras model file (neither a .keras zip nor an HDF5 .h5); "
        "check that the file is complete"
    )
