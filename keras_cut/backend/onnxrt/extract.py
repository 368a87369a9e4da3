"""A part of a `.onnx` artifact, cut out of the artifact itself between named tensors
(`verify --save-repro`): ONNX's own `onnx.utils.extract_model`, so that the part computes
exactly what those nodes of the whole compute, wrong values included."""

from __future__ import annotations

from pathlib import Path

from keras_cut.backend.native import error_line, missing_runtime
from keras_cut.core.errors import ArtifactError


def extract_part(path: Path, target: Path, inputs: list[str], outputs: list[str]) -> None:
    """Write to `target` the nodes of `path` that compute `outputs` from `inputs` (tensor
    names); refused when `outputs` need any other graph input."""
    try:
        import onnx.utils
    except ImportError as exc:
        raise missing_runtime(path, "onnx", "onnx") from exc
    try:
        onnx.utils.extract_model(str(path), str(target), inputs, outputs, check_model=True)
    except Exception as exc:  # onnx raises ValueError, KeyError or its checker's errors
        raise ArtifactError(f"{path}: ONNX could not cut the part between "
                            f"{', '.join(inputs)} and {', '.join(outputs)} out of the "
                            f"artifact ({error_line(exc)})") from exc
