"""Every tensor of a `.tflite` artifact in one LiteRT run (`experimental_preserve_all_tensors`,
which keeps each intermediate buffer), quantized tensors dequantized with their own scales and
zero points."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from keras_cut.backend.litert.runner import _refusal
from keras_cut.backend.native import error_line, missing_runtime, quiet_native_logs
from keras_cut.core.errors import ArtifactError


def intermediate_tensors(path: Path, feed: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, value) of every tensor an operation writes, in execution order (the order of
    the interpreter's operations), on `feed` (inputs by signature name)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise missing_runtime(path, "ai_edge_litert", "litert") from exc
    try:
        with quiet_native_logs():
            interpreter = Interpreter(model_path=str(path), num_threads=os.cpu_count() or 1,
                                      experimental_preserve_all_tensors=True)
            signatures = interpreter.get_signature_list()
            key = "serving_default" if "serving_default" in signatures else \
                next(iter(signatures))
            runner = interpreter.get_signature_runner(key)
            runner(**{name: feed[name] for name in signatures[key]["inputs"]})
    except RuntimeError as exc:
        raise _refusal(path, exc) from exc
    except (ValueError, StopIteration) as exc:
        raise ArtifactError(f"{path}: LiteRT could not run the artifact "
                            f"({error_line(exc)})") from exc
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    found: list[tuple[str, Any]] = []
    seen: set[int] = set()
    for op in interpreter._get_ops_details():  # private: listed in backend/litert/__init__
        if op.get("op_name") == "DELEGATE":
            continue
        for index in op["outputs"]:
            if index < 0 or index in seen or index not in details:
                continue
            seen.add(index)
            try:
                value = interpreter.get_tensor(index)
            except ValueError:  # a buffer the interpreter did not keep
                continue
            found.append((details[index]["name"], _dequantized(value, details[index])))
    return found


def _dequantized(value: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """A quantized tensor's real values: (q - zero_point) * scale, per channel where the
    tensor is quantized per channel."""
    params = detail.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", []), np.float64)
    if value.dtype.kind not in "iu" or not scales.size or not np.any(scales):
        return value
    zeros = np.asarray(params.get("zero_points", np.zeros_like(scales)), np.float64)
    if scales.size == 1:
        return (value.astype(np.float64) - zeros[0]) * scales[0]
    axis = int(params.get("quantized_dimension", 0))
    shape = [1] * value.ndim
    shape[axis] = scales.size
    return (value.astype(np.float64) - zeros.reshape(shape)) * scales.reshape(shape)
