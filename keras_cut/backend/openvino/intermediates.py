"""Every intermediate tensor of an OpenVINO IR in one run: a copy of the model read from the
files with each operation's outputs added as model outputs (the files are not changed), on the
CPU plugin in float32, as the proof runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keras_cut.backend.native import error_line, quiet_native_logs
from keras_cut.backend.openvino.runner import DEVICE, read_model, tensor_name
from keras_cut.core.errors import ArtifactError

SKIPPED = {"Parameter", "Result", "Constant"}


def intermediate_tensors(path: Path, feed: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, value) of every operation's outputs in the model's topological order; a name
    is every name the output carries, then the operation's, joined by ';'."""
    from keras_cut.backend.openvino.runner import openvino_module

    ov = openvino_module(path)
    model = read_model(path)
    inputs = [tensor_name(p) for p in model.inputs]
    ports = [out for op in model.get_ordered_ops() if op.get_type_name() not in SKIPPED
             for out in op.outputs()]
    # names first: adding an output renames its tensor after the new result
    named = [";".join([*sorted(port.get_names()), port.get_node().get_friendly_name()])
             for port in ports]
    try:
        with quiet_native_logs():
            model.add_outputs(ports)
            compiled = ov.Core().compile_model(model, DEVICE, {"INFERENCE_PRECISION_HINT": "f32"})
            results = compiled([feed[name] for name in inputs])
            by_port = {_key(out.get_node().input_value(0)): results[i]
                       for i, out in enumerate(model.outputs)}
            values = [by_port.get(_key(port)) for port in ports]
    except Exception as exc:  # OpenVINO raises its own RuntimeError subclasses
        raise ArtifactError(f"{path}: OpenVINO Runtime could not run the artifact with its "
                            f"intermediate tensors as outputs ({error_line(exc)})") from exc
    return [(name, value) for name, value in zip(named, values, strict=True)
            if value is not None]


def _key(port: Any) -> tuple[str, int]:
    """An operation output, the same whether reached from the model or from its op."""
    return port.get_node().get_friendly_name(), port.get_index()
