"""keras-cut's record inside a `.onnx` file: an entry of the model's `metadata_props`, written
with the `onnx` package and read back through ONNX Runtime's own model metadata."""

from __future__ import annotations

from pathlib import Path

from keras_cut.backend.native import missing_runtime

NAME = "keras_cut"


def write_record(path: Path, text: str) -> None:
    """Add (or replace) the record in the file at `path`, rewritten in place."""
    try:
        import onnx
    except ImportError as exc:
        raise missing_runtime(path, "onnx", "onnx") from exc
    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key != NAME]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key, entry.value = NAME, text
    onnx.save(model, str(path))
