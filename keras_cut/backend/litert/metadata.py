"""keras-cut's record inside a `.tflite` file: a named entry of the model's `metadata` table
pointing at a buffer that holds the JSON (the place the LiteRT schema gives such data). Read and
written with LiteRT's own flatbuffer schema, without TensorFlow."""

from __future__ import annotations

from pathlib import Path

from keras_cut.backend.native import missing_runtime
from keras_cut.core.errors import ArtifactError

NAME = "keras_cut"
MAX_RECORD = 2**24


def write_record(path: Path, text: str) -> None:
    """Add (or replace) the record in the file at `path`, rewritten in place."""
    try:
        from ai_edge_litert import schema_py_generated as schema
        from ai_edge_litert.tools import flatbuffer_utils
    except ImportError as exc:
        raise missing_runtime(path, "ai_edge_litert", "litert") from exc
    model = flatbuffer_utils.read_model(str(path))
    model.metadata = [m for m in (model.metadata or []) if m.name != NAME]
    buffer = schema.BufferT()
    buffer.data = list(text.encode())
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = NAME, len(model.buffers) - 1
    model.metadata.append(entry)
    flatbuffer_utils.write_model(model, str(path))


def read_record(path: Path) -> str | None:
    """The record's JSON text, or None when the file carries none."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError as exc:
        raise missing_runtime(path, "ai_edge_litert", "litert") from exc
    data = path.read_bytes()
    try:
        model = schema.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() is not None and entry.Name().decode() == NAME:
                buffer = model.Buffers(entry.Buffer())
                if buffer is None or buffer.DataLength() > MAX_RECORD:
                    return None
                return bytes(buffer.DataAsNumpy()).decode("utf-8", errors="replace")
    except (IndexError, ValueError, TypeError, AttributeError) as exc:
        raise ArtifactError(f"{path}: not a readable .tflite file ({exc})") from exc
    return None
