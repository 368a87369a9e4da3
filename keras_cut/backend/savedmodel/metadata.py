"""keras-cut's record inside a SavedModel directory: `assets.extra/keras_cut.json`, the
SavedModel's folder for files that travel with the model but that its graph does not load (TF
Serving keeps its warm-up requests there). Read without TensorFlow."""

from __future__ import annotations

from pathlib import Path

FOLDER, NAME = "assets.extra", "keras_cut.json"
MAX_RECORD = 2**24


def write_record(path: Path, text: str) -> None:
    folder = path / FOLDER
    folder.mkdir(exist_ok=True)
    (folder / NAME).write_text(text, encoding="utf-8")


def read_record(path: Path) -> str | None:
    record = path / FOLDER / NAME
    if not record.is_file() or record.stat().st_size > MAX_RECORD:
        return None
    return record.read_text(encoding="utf-8", errors="replace")
