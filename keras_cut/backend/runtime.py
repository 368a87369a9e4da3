"""Artifacts and the runtimes that run them: one runner per format (`backend/litert`,
`backend/onnxrt`), each with the same small interface (`input_names`, `output_names`, `run`),
as Polygraphy keeps one runner per framework. Only the runtime an artifact needs is imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from keras_cut.core.errors import ArtifactError

# suffix -> (Keras' export format, the runtime that runs it)
ARTIFACT_FORMATS = {".tflite": "litert", ".onnx": "onnx"}
EXTRAS = {"litert": "litert", "onnx": "onnx"}  # format -> keras-cut's pip extra


class Runner(Protocol):
    path: Path
    input_names: list[str]
    output_names: list[str]
    record_text: str | None  # keras-cut's record, where the artifact carries one
    shapes: dict[str, tuple[int | None, ...]]  # by input/output name; None: left open

    def run(self, feed: dict[str, Any]) -> list[Any]: ...


def open_artifact(path: Path, fmt: str) -> Runner:
    """The runner for `path` in its own runtime (imports that runtime, nothing else)."""
    if fmt == "litert":
        from keras_cut.backend.litert.runner import LiteRTRunner

        return LiteRTRunner(path)
    if fmt == "onnx":
        from keras_cut.backend.onnxrt.runner import OnnxRunner

        return OnnxRunner(path)
    raise ArtifactError(f"{path}: no runtime for format {fmt!r}")


def write_record(path: Path, fmt: str, text: str) -> None:
    """Store keras-cut's record inside the artifact, where its format keeps such data."""
    if fmt == "litert":
        from keras_cut.backend.litert import metadata as litert_metadata

        litert_metadata.write_record(path, text)
    else:
        from keras_cut.backend.onnxrt import metadata as onnx_metadata

        onnx_metadata.write_record(path, text)


def runtime_name(fmt: str) -> str:
    return {"litert": "LiteRT (ai_edge_litert)", "onnx": "ONNX Runtime"}[fmt]
