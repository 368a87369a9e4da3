"""What two model files hold besides their layers, compared for `diff`: the model's own fields
(its name, compile and build configs), the metadata Keras writes, every other zip member, and
arrays no layer accounts for. Nothing is run; arrays are read one at a time.

Each difference has a kind, so that a user can choose what to ignore (`ChangeKind`).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from keras_cut.core.errors import ModelFileError
from keras_cut.core.jsonvalues import as_dict
from keras_cut.file.modelfile import ModelFile
from keras_cut.model.structure import loose_changes


class ChangeKind(StrEnum):
    """What a difference between two files means (the JSON spells the value)."""

    BEHAVIOUR = "behaviour"  # what the model computes (or how it trains) may change
    SAFETY = "safety"  # where classes come from; content Keras does not read, a hiding place
    METADATA = "metadata"  # names, versions, compile settings: not what the model computes
    BITS = "bits"  # equal values in other bit patterns (0.0 and -0.0, NaN payloads)

    def __str__(self) -> str:
        return self.value


# zip members every .keras file has, compared on their own (layers, configs, arrays)
STANDARD_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
RECORD_MEMBER = "keras_cut.json"  # keras-cut's record of where a cut came from
# metadata.json fields that say when and where a file was written, nothing about the model
UNREAD_METADATA = ("date_saved",)


@dataclass
class FileChange:
    what: str  # "model.name", "metadata.keras_version", "member assets/x.py", "array hidden/x"
    old: Any
    new: Any
    kind: ChangeKind

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "old": self.old, "new": self.new, "kind": str(self.kind)}


def file_changes(a: ModelFile, b: ModelFile) -> list[FileChange]:
    """Everything but the layers that differs between the two files."""
    changes = _model_fields(a, b) + _metadata(a, b)
    if a.format == b.format == "keras":
        changes += _members(a, b)
    return changes + _stray_arrays(a, b)


def _model_fields(a: ModelFile, b: ModelFile) -> list[FileChange]:
    changes = []
    strict = (a.format, a.legacy) == (b.format, b.legacy)
    for where, x, y in loose_changes(_model_form(a), _model_form(b), strict):
        kind = ChangeKind.METADATA if where.split(".")[0] in ("name", "compile_config") \
            else ChangeKind.SAFETY if where in ("module", "registered_name", "class_name") \
            else ChangeKind.BEHAVIOUR
        changes.append(FileChange(f"model.{where}", x, y, kind))
    return changes


def _model_form(model_file: ModelFile) -> dict[str, Any]:
    """The model's own serialized fields (its layers and endpoints are compared apart)."""
    config = model_file.config
    form = {k: v for k, v in config.items() if k != "config"}
    inner = as_dict(config.get("config"))
    form.update({k: v for k, v in inner.items()
                 if k not in ("layers", "input_layers", "output_layers")})
    if model_file.format == "h5":
        form["compile_config"] = _h5_training_config(model_file)
    return form


def _h5_training_config(model_file: ModelFile) -> Any:
    import h5py

    with h5py.File(model_file.source, "r") as h5:
        raw = h5.attrs.get("training_config")
    if raw is None:
        return None
    try:
        return json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except ValueError:
        return str(raw)[:200]


def _metadata(a: ModelFile, b: ModelFile) -> list[FileChange]:
    """The Keras version and backend that wrote each file; files of different formats (a
    tf.keras 2 file and its conversion) have different writers by nature, and `diff` notes
    the formats instead."""
    if (a.format, a.legacy) != (b.format, b.legacy):
        return []
    changes = []
    for name in ("keras_version", "backend"):
        old, new = getattr(a, name), getattr(b, name)
        if old != new and old is not None and new is not None:
            changes.append(FileChange(f"metadata.{name}", old, new, ChangeKind.METADATA))
    return changes


def _members(a: ModelFile, b: ModelFile) -> list[FileChange]:
    """Zip members beyond the standard three: added, removed, or with other bytes."""
    old, new = _member_digests(a), _member_digests(b)
    groups = tuple(f"assets/{g}/" for f in (a, b) for g in f.groups.values())
    changes = []
    for name in sorted(old.keys() | new.keys()):
        if old.get(name) == new.get(name):
            continue
        # a layer's asset (a vocabulary) is what it computes with; anything else a hiding place
        kind = ChangeKind.METADATA if name == RECORD_MEMBER else \
            ChangeKind.BEHAVIOUR if name.startswith(groups) else ChangeKind.SAFETY
        changes.append(FileChange(f"member {name}", _size(old.get(name)), _size(new.get(name)),
                                  kind))
    return changes


def _member_digests(model_file: ModelFile) -> dict[str, tuple[int, str]]:
    """Size and SHA-256 of each member beyond the standard three (a CRC-32 can be forged)."""
    import hashlib

    try:
        with zipfile.ZipFile(model_file.path) as zf:
            return {info.filename: (info.file_size,
                                    hashlib.sha256(zf.read(info.filename)).hexdigest())
                    for info in zf.infolist() if info.filename not in STANDARD_MEMBERS}
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise ModelFileError(f"{model_file.path}: a zip member cannot be read ({exc}); the "
                             "file is damaged") from exc


def _size(entry: tuple[int, str] | None) -> str | None:
    return None if entry is None else f"{entry[0]:,} bytes (sha256 {entry[1][:12]}…)"


def _stray_arrays(a: ModelFile, b: ModelFile) -> list[FileChange]:
    """Arrays no layer accounts for: Keras never reads them, so they are a hiding place."""
    old, new = set(a.stray_weights), set(b.stray_weights)
    changes = [FileChange(f"array {p}", None if p not in old else "present",
                          None if p not in new else "present", ChangeKind.SAFETY)
               for p in sorted(old ^ new)]
    both = sorted(old & new)
    if both:
        import numpy as np

        with a.open_weights() as h5a, b.open_weights() as h5b:
            for path in both:
                x, y = np.asarray(h5a[path]), np.asarray(h5b[path])
                if (x.shape, x.dtype, x.tobytes()) != (y.shape, y.dtype, y.tobytes()):
                    changes.append(FileChange(f"array {path}", "other bytes", "other bytes",
                                              ChangeKind.SAFETY))
    return changes
