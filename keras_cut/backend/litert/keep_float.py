"""int8 with some layers kept in float (`export --quantize int8 --keep-float LAYER`): the way
LiteRT's own QuantizationDebugger makes a selectively quantized model. The converter
calibrates only (`_experimental_calibrate_only`), then TensorFlow's MLIR quantizer quantizes
the calibrated model with the named operations left out (`mlir_quantize(denylisted_nodes=)`,
which takes the output tensor names of the operations to keep in float).

Both are private TensorFlow APIs, listed here (checked on TensorFlow 2.21 by
`tests/backend/test_keep_float.py`, which fails by name when an upgrade changes one).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

PRIVATE_APIS = {
    "TFLiteConverter._experimental_calibrate_only":
        "the converter calibrates and stops, leaving quantization to mlir_quantize",
    "tensorflow.lite.python.convert.mlir_quantize":
        "quantizes a calibrated model, leaving out the operations named in denylisted_nodes",
}
CALIBRATE_ONLY = "_experimental_calibrate_only"  # a converter setting Keras passes on


def tensor_names(model: bytes) -> list[str]:
    """The name of every tensor of a `.tflite` model (an operation's output carries the name
    the denylist wants)."""
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=model)
    return [detail["name"] for detail in interpreter.get_tensor_details()]


def quantize_keeping_float(target: Path, choose: Callable[[list[str]], list[str]]) -> None:
    """`target` holds a calibrated model: quantize it to int8 in place, keeping in float the
    operations whose output tensors `choose` picks from the model's tensor names."""
    from tensorflow.lite.python.convert import mlir_quantize

    calibrated = target.read_bytes()
    kept = choose(tensor_names(calibrated))
    quantized: Any = mlir_quantize(calibrated, disable_per_channel=False,
                                   denylisted_nodes=kept)
    target.write_bytes(quantized)
