"""A `.onnx` artifact run by ONNX Runtime on the CPU: inputs by name, outputs in the order the
graph declares them (the order Keras flattened the model's outputs when it was exported)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keras_cut.backend.native import error_line, missing_runtime, quiet_native_logs
from keras_cut.core.errors import ArtifactError


class OnnxRunner:
    def __init__(self, path: Path) -> None:
        try:
            import onnxruntime
        except ImportError as exc:
            raise missing_runtime(path, "onnxruntime", "onnx") from exc
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only
        try:
            with quiet_native_logs():
                self._session = onnxruntime.InferenceSession(
                    str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # the runtime's own error types differ by build
            raise ArtifactError(f"{path}: ONNX Runtime cannot load the artifact "
                                f"({error_line(exc)})") from exc
        self.record_text: str | None = \
            self._session.get_modelmeta().custom_metadata_map.get("keras_cut")
        self.input_names: list[str] = [i.name for i in self._session.get_inputs()]
        self.output_names: list[str] = [o.name for o in self._session.get_outputs()]
        self.shapes: dict[str, tuple[int | None, ...]] = {
            t.name: tuple(d if isinstance(d, int) else None for d in t.shape)
            for t in [*self._session.get_inputs(), *self._session.get_outputs()]}
        self.path = path

    def run(self, feed: dict[str, Any]) -> list[Any]:
        with quiet_native_logs():
            return list(self._session.run(None, {name: feed[name] for name in self.input_names}))
