"""keras-cut's record inside an OpenVINO IR: an entry of the model's `rt_info` (the place the IR
gives such data), written by OpenVINO itself into the `.xml`. Also the IR's float16 weight
compression, the one quantization OpenVINO itself offers without another package, and tidying
what the converter wrote (input names, results for internal tensors)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from keras_cut.backend.native import error_line, quiet_native_logs
from keras_cut.backend.openvino.runner import NAME, openvino_module, read_model
from keras_cut.core.errors import ArtifactError


def write_record(path: Path, text: str) -> None:
    """Add (or replace) the record in the IR at `path`, rewritten in place. `text` is written
    on one line: XML would fold the line breaks of an attribute value."""
    model = read_model(path)
    model.set_rt_info(" ".join(text.splitlines()), NAME)
    _rewrite(path, model, compress=False)


def compress_to_float16(path: Path) -> None:
    """Store the IR's float32 weights as float16 (OpenVINO decompresses them when it compiles
    the model)."""
    _rewrite(path, read_model(path), compress=True)


STRUCTURED = re.compile(r"Identity(_\d+)?:0")  # the converted function's own outputs


def is_model_output(port: Any) -> bool:
    """An output the exported model returns: named by its key (a dict output) or as one of the
    converted function's `Identity:0`, `Identity_1:0`, …; not an internal tensor the converter
    also exposed as a result."""
    names = port.get_names()
    return any(STRUCTURED.fullmatch(n) or ("/" not in n and ":" not in n) for n in names)


def tidy(path: Path, input_layers: list[str], outputs: int) -> None:
    """Name each input after its input layer, as the other formats do (Keras names a dict
    input by its key: a key that is another input's layer name then misleads), and remove the
    results OpenVINO's TensorFlow frontend adds for internal tensors (it exposes a scalar
    inside MultiHeadAttention, for one), so the IR has the model's outputs only. The inputs
    come in the order Keras flattens the model's inputs, `input_layers`' order."""
    model = read_model(path)
    if len(model.inputs) != len(input_layers):
        raise ArtifactError(f"{path}: OpenVINO's converter gave {len(model.inputs)} inputs "
                            f"for the model's {len(input_layers)}")
    for port, layer in zip(model.inputs, input_layers, strict=True):
        port.get_tensor().set_names({layer})
        port.get_node().set_friendly_name(layer)
    stray = [port for port in model.outputs if not is_model_output(port)]
    if len(model.outputs) - len(stray) != outputs:
        raise ArtifactError(f"{path}: OpenVINO's converter gave {len(model.outputs)} outputs "
                            f"for the model's {outputs}, and which are the model's cannot be "
                            "told")
    for port in stray:
        model.remove_result(port.get_node())
    _rewrite(path, model, compress=False)


def _rewrite(path: Path, model: Any, compress: bool) -> None:
    ov = openvino_module(path)
    rewritten = path.with_name(f"{path.stem}.rewritten.xml")
    try:
        with quiet_native_logs():
            try:
                ov.save_model(model, str(rewritten), compress_to_fp16=compress)
            except RuntimeError as exc:  # OpenVINO's own errors (a full disk among them)
                raise ArtifactError(f"{path}: OpenVINO could not write the IR "
                                    f"({error_line(exc)})") from exc
        del model  # OpenVINO may map the old .bin: let go of it before it is replaced
        rewritten.with_suffix(".bin").replace(path.with_suffix(".bin"))
        rewritten.replace(path)
    finally:
        rewritten.unlink(missing_ok=True)
        rewritten.with_suffix(".bin").unlink(missing_ok=True)
