"""int8 with some layers kept in float (`export --quantize int8 --keep-float LAYER`): the way
LiteRT's own QuantizationDebugger makes a selectively quantized model. The converter
calibrates only (`_experimental_calibrate_only`), then TensorFlow's MLIR quantizer quantizes
the calibrated model with the named operations left out (`mlir_quantize(denylisted_nodes=)`,
which takes the output tensor names of the operations to keep in float). The quantized model
is then read back: the quantizer leaves some operations int8 whatever the denylist (those whose
output shares its input's scale: pooling, SPLIT), and a layer asked for in float must come out
so.

Private APIs, listed here (checked on TensorFlow 2.21 and ai-edge-litert by
`tests/export/test_keep_float.py`, which fails by name when an upgrade changes one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

PRIVATE_APIS = {
    "TFLiteConverter._experimental_calibrate_only":
        "the converter calibrates and stops, leaving quantization to mlir_quantize",
    "tensorflow.lite.python.convert.mlir_quantize":
        "quantizes a calibrated model, leaving out the operations named in denylisted_nodes",
    "Interpreter._get_ops_details":
        "each operation's kind and tensors, to tie it to a layer and read its dtypes back",
}
CALIBRATE_ONLY = "_experimental_calibrate_only"  # a converter setting Keras passes on
QUANTIZED = {"int8", "uint8", "int16"}


@dataclass
class Operation:
    """One operation of a `.tflite` model, as the denylist and the check see it."""

    kind: str  # "FULLY_CONNECTED"
    outputs: list[str]  # its output tensors' names (what the denylist takes)
    constants: list[str]  # its constant inputs' names (weights carry the layer's scope when
    # the output is named after the model's signature)
    quantized: bool  # an input or output tensor is an integer quantized type


class Chooser(Protocol):
    """What picks the operations to keep in float, and checks the result."""

    def pick(self, operations: list[Operation]) -> list[str]: ...

    def check(self, operations: list[Operation]) -> None: ...


def operations(model: bytes) -> list[Operation]:
    """Every operation of a `.tflite` model, in execution order."""
    import numpy as np

    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # TensorFlow's own, deprecated but the same
        from tensorflow.lite.python.interpreter import Interpreter

    interpreter: Any = Interpreter(model_content=model)
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()  # noqa: SLF001  (listed in PRIVATE_APIS)
    made = {i for op in ops for i in op["outputs"]}
    fed = {d["index"] for d in interpreter.get_input_details()}
    found = []
    for op in ops:
        used = [i for i in [*op["inputs"], *op["outputs"]] if i >= 0 and i in tensors]
        found.append(Operation(
            op["op_name"], [tensors[i]["name"] for i in op["outputs"] if i in tensors],
            [tensors[i]["name"] for i in op["inputs"]
             if i >= 0 and i in tensors and i not in made and i not in fed],
            any(np.dtype(tensors[i]["dtype"]).name in QUANTIZED for i in used)))
    return found


def quantize_keeping_float(target: Path, chooser: Chooser) -> None:
    """`target` holds a calibrated model: quantize it to int8 in place, keeping in float the
    operations `chooser` picks, and let it check what came out."""
    from tensorflow.lite.python.convert import mlir_quantize

    calibrated = target.read_bytes()
    kept = chooser.pick(operations(calibrated))
    quantized: Any = mlir_quantize(calibrated, disable_per_channel=False,
                                   denylisted_nodes=kept)
    chooser.check(operations(quantized))
    target.write_bytes(quantized)
