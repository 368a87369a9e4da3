"""An OpenVINO IR artifact (`.xml` and the `.bin` beside it) compiled for OpenVINO Runtime's
CPU plugin: inputs by name, outputs in the order the model declares them (the order Keras
flattened the model's outputs when it was exported).

The CPU plugin runs in bfloat16 by default on CPUs that have it; the proof pins float32
(`INFERENCE_PRECISION_HINT`), the precision the artifact holds, so a pass does not depend on
the machine it ran on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keras_cut.backend.native import error_line, missing_runtime, quiet_native_logs
from keras_cut.backend.openvino import import_openvino
from keras_cut.core.errors import ArtifactError

NAME = "keras_cut"  # the model's rt_info entry that holds keras-cut's record
DEVICE = "CPU"


def openvino_module(path: Path) -> Any:
    try:
        return import_openvino()
    except ImportError as exc:
        raise missing_runtime(path, "openvino", "openvino") from exc


def read_model(path: Path) -> Any:
    """The IR at `path` (its weights from the `.bin` beside it), as OpenVINO reads it."""
    ov = openvino_module(path)
    weights = path.with_suffix(".bin")
    if not path.is_file():
        raise ArtifactError(f"{path}: no such file; check the path")
    if not weights.is_file():
        raise ArtifactError(f"{path}: its weights file {weights.name} is missing; an OpenVINO "
                            "IR is the .xml and the .bin beside it, copy both")
    try:
        with quiet_native_logs():
            return ov.Core().read_model(str(path), str(weights))
    except Exception as exc:  # OpenVINO raises its own RuntimeError subclasses
        raise ArtifactError(f"{path}: OpenVINO cannot read the artifact "
                            f"({error_line(exc)})") from exc


def tensor_name(port: Any) -> str:
    """One stable name of an input or output: the name Keras gave it (an input's name, a dict
    output's key) where it has one, else the converter's `Identity…` name, else any."""
    names = sorted(port.get_names())
    plain = [n for n in names if "/" not in n and ":" not in n]
    identity = [n for n in names if n.startswith("Identity")]
    chosen = (plain or identity or names or [""])[0]
    return chosen or port.get_node().get_friendly_name()


class OpenVINORunner:
    def __init__(self, path: Path) -> None:
        ov = openvino_module(path)
        model = read_model(path)
        self.record_text: str | None = \
            str(model.get_rt_info(NAME).astype(str)) if model.has_rt_info(NAME) else None
        self.input_names: list[str] = [tensor_name(p) for p in model.inputs]
        self.output_names: list[str] = [tensor_name(p) for p in model.outputs]
        self.shapes: dict[str, tuple[int | None, ...]] = {
            name: tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
            for name, port in [*zip(self.input_names, model.inputs, strict=True),
                               *zip(self.output_names, model.outputs, strict=True)]}
        try:
            with quiet_native_logs():
                self._compiled = ov.Core().compile_model(
                    model, DEVICE, {"INFERENCE_PRECISION_HINT": "f32"})
        except Exception as exc:
            raise ArtifactError(f"{path}: OpenVINO Runtime cannot compile the artifact for its "
                                f"CPU ({error_line(exc)})") from exc
        self.path = path

    def run(self, feed: dict[str, Any]) -> list[Any]:
        with quiet_native_logs():
            request = self._compiled.create_infer_request()
            results = request.infer([feed[name] for name in self.input_names])
        return [results[port] for port in self._compiled.outputs]
