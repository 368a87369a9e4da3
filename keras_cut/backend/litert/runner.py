"""A `.tflite` artifact run by LiteRT's interpreter, through its serving signature: inputs and
outputs by name, the batch resized to what is fed."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from keras_cut.backend.native import (
    error_line,
    keras_order,
    missing_runtime,
    quiet_native_logs,
)
from keras_cut.core.errors import ArtifactError


class LiteRTRunner:
    def __init__(self, path: Path) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise missing_runtime(path, "ai_edge_litert", "litert") from exc
        try:
            with quiet_native_logs():
                # LiteRT runs on one thread unless told (the other runtimes use every core)
                interpreter = Interpreter(model_path=str(path), num_threads=os.cpu_count() or 1)
                signatures = interpreter.get_signature_list()
        except (ValueError, RuntimeError) as exc:
            raise ArtifactError(f"{path}: LiteRT cannot read the artifact "
                                f"({error_line(exc)})") from exc
        if not signatures:
            raise ArtifactError(f"{path}: the artifact has no signature to run; export it with "
                                "Keras (model.export) or keras-cut")
        key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        try:
            with quiet_native_logs():
                interpreter.allocate_tensors()
        except RuntimeError as exc:
            raise _refusal(path, exc) from exc
        self._runner = interpreter.get_signature_runner(key)
        from keras_cut.backend.litert.metadata import read_record

        self.record_text: str | None = read_record(path)
        self.input_names: list[str] = list(signatures[key]["inputs"])
        self.output_names: list[str] = keras_order(list(signatures[key]["outputs"]))
        details = {**self._runner.get_input_details(), **self._runner.get_output_details()}
        self.shapes: dict[str, tuple[int | None, ...]] = {
            name: tuple(None if d < 0 else int(d) for d in info["shape_signature"])
            for name, info in details.items()}
        self.path = path

    def run(self, feed: dict[str, Any]) -> list[Any]:
        with quiet_native_logs():
            out = self._runner(**{name: feed[name] for name in self.input_names})
        return [out[name] for name in self.output_names]


def _refusal(path: Path, exc: RuntimeError) -> ArtifactError:
    """What LiteRT's interpreter refuses to prepare, said in the user's terms."""
    text = " ".join(str(exc).split())
    if "Select TensorFlow op" in text:
        ops = sorted(set(re.findall(r"\((Flex\w+)\)", text)))
        named = f" ({', '.join(ops)})" if ops else ""
        return ArtifactError(
            f"{path}: the artifact needs TensorFlow ops{named} that LiteRT's builtin interpreter "
            "does not run (the converter kept them as Select TF ops; a device needs the Flex "
            "delegate, org.tensorflow:tensorflow-lite-select-tf-ops), so it cannot be proven "
            "here; recurrent layers with an open batch size and float16 compute "
            "(mixed_float16) are what usually needs them: export to .onnx, or cut before the "
            "layers that need them")
    return ArtifactError(f"{path}: LiteRT cannot prepare the artifact ({text[:300]})")
