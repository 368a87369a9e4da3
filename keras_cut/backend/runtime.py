"""Artifacts and the runtimes that run them: one runner per format (`backend/litert`,
`backend/onnxrt`, `backend/openvino`, `backend/savedmodel`), each with the same small interface
(`input_names`, `output_names`, `run`), as Polygraphy keeps one runner per framework. Only the
runtime an artifact needs is imported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from keras_cut.core.errors import ArtifactError


@dataclass(frozen=True)
class ArtifactFormat:
    name: str  # Keras' name for the format (`Model.export(format=...)`)
    suffix: str  # the artifact's file suffix; "" for a directory
    runtime: str  # what runs it, in words
    extra: str  # keras-cut's pip extra that installs the runtime
    companions: tuple[str, ...] = ()  # suffixes of files written beside it (.bin)

    @property
    def is_directory(self) -> bool:
        return not self.suffix

    def described(self) -> str:
        return f"{self.suffix or 'a directory'} ({self.name})"


FORMATS = {f.name: f for f in (
    ArtifactFormat("litert", ".tflite", "LiteRT (ai_edge_litert)", "litert"),
    ArtifactFormat("onnx", ".onnx", "ONNX Runtime", "onnx"),
    ArtifactFormat("openvino", ".xml", "OpenVINO Runtime", "openvino", (".bin",)),
    ArtifactFormat("tf_saved_model", "", "TensorFlow (tf.saved_model)", "tensorflow"),
)}
ARTIFACT_FORMATS = {f.suffix: f.name for f in FORMATS.values() if f.suffix}  # suffix -> format
SAVED_MODEL_FILE = "saved_model.pb"
# what a SavedModel directory holds at its top level (TensorFlow's and keras-cut's files)
SAVED_MODEL_LAYOUT = frozenset({SAVED_MODEL_FILE, "variables", "assets", "assets.extra",
                                "fingerprint.pb"})


def artifact_format(path: Path) -> str | None:
    """The format of an existing artifact at `path`: by its suffix, or a SavedModel directory;
    None for anything else (a Keras model file)."""
    if path.is_dir():
        return "tf_saved_model" if (path / SAVED_MODEL_FILE).is_file() else None
    return ARTIFACT_FORMATS.get(path.suffix.lower())


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
    if fmt == "openvino":
        from keras_cut.backend.openvino.runner import OpenVINORunner

        return OpenVINORunner(path)
    if fmt == "tf_saved_model":
        from keras_cut.backend.savedmodel.runner import SavedModelRunner

        return SavedModelRunner(path)
    raise ArtifactError(f"{path}: no runtime for format {fmt!r}")


def intermediate_tensors(path: Path, fmt: str, feed: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every intermediate tensor of the artifact on `feed`, (name, value) in the order the
    runtime computes them, read in one run of its own runtime (`verify --locate`)."""
    if fmt == "litert":
        from keras_cut.backend.litert import intermediates as litert

        return litert.intermediate_tensors(path, feed)
    if fmt == "onnx":
        from keras_cut.backend.onnxrt import intermediates as onnx

        return onnx.intermediate_tensors(path, feed)
    if fmt == "openvino":
        from keras_cut.backend.openvino import intermediates as openvino

        return openvino.intermediate_tensors(path, feed)
    raise ArtifactError(f"{path}: locating inside a {runtime_name(fmt)} artifact is not "
                        "supported (it reads .tflite, .onnx and .xml artifacts)")


def extract_part(path: Path, fmt: str, target: Path, inputs: list[str],
                 outputs: list[str]) -> bool:
    """Cut the part between tensors `inputs` and `outputs` out of the artifact itself, where
    its format allows (ONNX); False where it does not."""
    if fmt != "onnx":
        return False
    from keras_cut.backend.onnxrt.extract import extract_part as onnx_part

    onnx_part(path, target, inputs, outputs)
    return True


def write_record(path: Path, fmt: str, text: str) -> None:
    """Store keras-cut's record inside the artifact, where its format keeps such data."""
    if fmt == "litert":
        from keras_cut.backend.litert import metadata as litert_metadata

        litert_metadata.write_record(path, text)
    elif fmt == "onnx":
        from keras_cut.backend.onnxrt import metadata as onnx_metadata

        onnx_metadata.write_record(path, text)
    elif fmt == "openvino":
        from keras_cut.backend.openvino import metadata as openvino_metadata

        openvino_metadata.write_record(path, text)
    else:
        from keras_cut.backend.savedmodel import metadata as saved_metadata

        saved_metadata.write_record(path, text)


def runtime_name(fmt: str) -> str:
    return FORMATS[fmt].runtime
