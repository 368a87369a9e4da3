"""A small record, stored inside a cut's file, of where each input and output came from.

Keras names cannot hold a path (`backbone/conv1`) or a call (`shared@1`), so the record keeps
them exactly: for each submodel input and output (in the order of the submodel's config) the
parent tensor it stands for, as the chain of calls down to the producing layer call and that
call's output index. `verify` prefers the record and falls back to matching names when a file
has none.
Keras ignores the extra zip member (.keras) and root attribute (.h5).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

MEMBER = "keras_cut.json"
ATTRIBUTE = "keras_cut"


def write(path: Path, fmt: str, record: dict[str, Any]) -> None:
    text = json.dumps(record, indent=1)
    if fmt == "keras":
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr(MEMBER, text)
    else:
        import h5py

        with h5py.File(path, "a") as h5:
            h5.attrs[ATTRIBUTE] = text


def read(path: Path) -> dict[str, Any] | None:
    """The record, or None for files keras-cut did not write (or damaged records)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
        if head == b"PK\x03\x04":
            with zipfile.ZipFile(path) as zf:
                if MEMBER not in zf.namelist() or zf.getinfo(MEMBER).file_size > 2**24:
                    return None
                text = zf.read(MEMBER)
        else:
            import h5py

            with h5py.File(path, "r") as h5:
                if ATTRIBUTE not in h5.attrs:
                    return None
                text = h5.attrs[ATTRIBUTE]
        record = json.loads(text)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    return record if isinstance(record, dict) else None


def is_frozen(record: dict[str, Any] | None) -> bool:
    """Whether keras-cut's record says the cut set every layer's `trainable` to false."""
    return isinstance(record, dict) and record.get("frozen") is True


def record_layer_paths(record: dict[str, Any] | None) -> Callable[[str], str]:
    """A submodel layer path -> the parent path the record gives its top-level layer."""
    layers = record.get("layers") if isinstance(record, dict) else None
    layers = layers if isinstance(layers, dict) else {}

    def parent_path(sub_path: str) -> str:
        head, sep, rest = sub_path.partition("/")
        return str(layers.get(head, head)) + sep + rest

    return parent_path
