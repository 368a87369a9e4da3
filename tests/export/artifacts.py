"""Artifacts in tests: run through each runtime's own API (never keras-cut's runners), copied
with the files beside them, and tampered with at a known weight."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

# every format keras-cut exports, by the output's suffix ("" : a SavedModel directory)
SUFFIXES = [pytest.param(s, id=s.lstrip(".") or "savedmodel")
            for s in (".tflite", ".onnx", ".xml", "")]
RUNTIME_ONLY = SUFFIXES[:3]  # formats whose runtime is not TensorFlow


def run_artifact(path: Path, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The artifact's outputs from its runtime's own API, in the runtime's order."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {i.name: feed[i.name] for i in session.get_inputs()})
    if path.suffix == ".xml":
        import openvino as ov

        compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        results = compiled([next(feed[n] for n in port.get_names() if n in feed)
                            for port in compiled.inputs])
        return [results[port] for port in compiled.outputs]
    if path.is_dir():
        import tensorflow as tf

        signature = tf.saved_model.load(str(path)).signatures["serving_default"]
        out = signature(**{k: tf.constant(v) for k, v in feed.items()})
        return [out[k].numpy() for k in sorted(out, key=lambda n: (len(n), n))]
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    out = runner(**feed)
    return [out[k] for k in sorted(out, key=lambda n: (len(n), n))]


def copy_artifact(source: Path, target: Path) -> Path:
    """Copy an artifact with what travels with it (an IR's .bin; a SavedModel's directory)."""
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)
        if source.suffix == ".xml":
            shutil.copyfile(source.with_suffix(".bin"), target.with_suffix(".bin"))
    return target


def weights_file(path: Path) -> Path:
    """The file that holds an artifact's weights."""
    if path.is_dir():
        (data,) = (path / "variables").glob("variables.data-*")
        return data
    return path.with_suffix(".bin") if path.suffix == ".xml" else path


def tamper(path: Path, model_path: Path, layer: str) -> None:
    """Change one float of a layer's bias inside the artifact (found by value): in its bytes,
    or, for a SavedModel (whose variables carry checksums), through TensorFlow: the variable
    assigned and the SavedModel written again."""
    import keras

    bias = keras.saving.load_model(model_path, compile=False).get_layer(layer).get_weights()[1]
    if Path(path).is_dir():
        _tamper_saved_model(Path(path), bias)
        return
    target = weights_file(Path(path))
    data = bytearray(target.read_bytes())
    at = data.find(bias.astype("<f4").tobytes())
    assert at >= 0, "the bias is not stored verbatim in the artifact"
    data[at:at + 4] = np.float32(bias[0] + 0.5).tobytes()
    target.write_bytes(bytes(data))


def _tamper_saved_model(path: Path, bias: np.ndarray) -> None:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    (variable,) = [v for v in loaded.variables
                   if tuple(v.shape) == bias.shape and np.array_equal(v.numpy(), bias)]
    changed = bias.copy()
    changed[0] += 0.5
    variable.assign(changed)
    rewritten = path.with_name(path.name + ".tampered")
    tf.saved_model.save(loaded, str(rewritten), signatures=loaded.signatures)
    if (path / "assets.extra").is_dir():  # keras-cut's record, once written
        shutil.copytree(path / "assets.extra", rewritten / "assets.extra")
    shutil.rmtree(path)
    rewritten.rename(path)


def converter_writing_wrong(monkeypatch, model_path: Path, layer: str) -> None:
    """keras-cut's export made to write `layer`'s bias wrong in every artifact (a converter
    bug, simulated: the artifact tampered as it is written)."""
    from keras_cut.backend.keras import exporting

    real = exporting.export_file

    def wrong_converter(cut_file, path, fmt, *args, **kwargs):
        order = real(cut_file, path, fmt, *args, **kwargs)
        tamper(Path(path), model_path, layer)
        return order

    monkeypatch.setattr(exporting, "export_file", wrong_converter)
