"""What a saved model holds, read without Keras (`ModelFile`): config, metadata, the weight
index and assets; the limits that guard against hostile files; helpers over configs and
stored attributes."""

from __future__ import annotations

import contextlib
import math
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keras_cut.core.dtypes import dtype_bytes
from keras_cut.core.errors import ModelFileError
from keras_cut.file.zipmember import open_member

H5_MAGIC = b"\x89HDF\r\n\x1a\n"


# Guards against hostile files. Real Keras files are nowhere near these.
MAX_CONFIG_BYTES = 256 * 2**20


MAX_ZIP_MEMBERS = 100_000


MAX_ZIP_RATIO = 200  # declared size / compressed size, for members over MIN_RATIO_CHECK


MIN_RATIO_CHECK = 2**20


MAX_H5_OBJECTS = 1_000_000


MAX_H5_DEPTH = 64


MAX_DATASET_EXPANSION = 64  # declared bytes / stored bytes, for datasets over MIN_BOMB_BYTES


MIN_BOMB_BYTES = 2**20


NestedKey = tuple[str, ...]


DatasetIndex = dict[str, tuple[tuple[int, ...], str]]  # h5 path -> (shape, dtype)


@dataclass(frozen=True)
class WeightEntry:
    """One stored array: where it is in the weight h5 and what it declares."""

    name: str  # the stored name: "kernel" (h5), or "vars/0", "cell/vars/1" (.keras)
    shape: tuple[int, ...]
    dtype: str
    h5_path: str

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * itemsize(self.dtype)


@dataclass
class ModelFile:
    """What a saved model holds, read without Keras: config, metadata, weight index."""

    path: Path
    format: str  # "keras" or "h5"
    config: dict[str, Any]  # the serialized model: {"class_name", "config", ...}
    keras_version: str | None = None
    date_saved: str | None = None
    backend: str | None = None
    # Stored arrays per layer, keyed by the layer's name path (("backbone", "conv1")).
    weights: dict[NestedKey, list[WeightEntry]] = field(default_factory=dict)
    # Arrays that no layer of the config accounts for (a mismatched weight file).
    stray_weights: list[str] = field(default_factory=list)
    # `.keras` files: each layer's group in the weight h5 ("layers/functional/layers/conv2d").
    groups: dict[NestedKey, str] = field(default_factory=dict)
    # tf.keras 2 files: `config` is normalised for Keras 3, `legacy_changes` says how.
    legacy: bool = False
    legacy_changes: list[Any] = field(default_factory=list)
    # Every array in the weight h5 (path -> shape, dtype): what `inspect` shows of a model whose
    # config holds constructor arguments instead of layers.
    arrays: DatasetIndex = field(default_factory=dict)
    # A model built from code (`--custom-objects`): the file its functional graph was saved
    # to, which every read of configs and arrays uses; `path` stays the user's file.
    storage: Path | None = None
    built_from: Any = None  # backend.materialize.BuiltFrom: the class and the code used

    @property
    def source(self) -> Path:
        """The file whose bytes are read: `path`, or the functional copy built from code."""
        return self.storage or self.path

    @contextlib.contextmanager
    def open_weights(self) -> Iterator[Any]:
        """Open the weight h5 for reading values (h5py.File)."""
        import h5py

        if self.format == "h5":
            with h5py.File(self.source, "r") as h5:
                yield h5
            return
        with zipfile.ZipFile(self.source) as zf, \
                open_member(self.source, zf, "model.weights.h5") as fh:
            with h5py.File(fh, "r") as h5:
                yield h5

    def layer_assets(self) -> dict[NestedKey, dict[str, str]]:
        """The files Keras saved for each layer (`save_assets`, under `assets/` + the layer's
        path in the weights: an adapted lookup's vocabulary), by name, with their SHA-256."""
        if self.format != "keras" or not self.groups:
            return {}
        import hashlib

        by_group = {group + "/": key for key, group in self.groups.items()}
        found: dict[NestedKey, dict[str, str]] = {}
        try:
            with zipfile.ZipFile(self.source) as zf:
                for info in zf.infolist():
                    if not info.filename.startswith("assets/") or info.is_dir():
                        continue
                    inner = info.filename[len("assets/"):]
                    owner = max((g for g in by_group if inner.startswith(g)), key=len,
                                default=None)
                    if owner is not None:
                        digest = hashlib.sha256(zf.read(info.filename)).hexdigest()
                        found.setdefault(by_group[owner], {})[inner[len(owner):]] = digest
        except (OSError, zipfile.BadZipFile, EOFError, ValueError) as exc:
            raise ModelFileError(f"{self.path}: its assets cannot be read ({exc}); the file "
                                 "is damaged") from exc
        return found

    def read_weight(self, h5: Any, entry: WeightEntry) -> Any:
        """The array behind `entry`, from an h5 opened with `open_weights`."""
        import numpy as np

        value = np.asarray(h5[entry.h5_path])
        if entry.dtype == "bfloat16":
            import ml_dtypes

            value = value.view(ml_dtypes.bfloat16) if value.dtype.itemsize == 2 else value
        return value


def model_layer_configs(model_config: dict[str, Any]) -> list[dict[str, Any]]:
    """The layers a Functional or Sequential config lists ([] for anything else)."""
    inner = model_config.get("config")
    if not isinstance(inner, dict):
        return []
    layers = inner.get("layers")
    if not isinstance(layers, list):
        return []
    return [layer for layer in layers if isinstance(layer, dict)]


def is_model_config(layer_config: dict[str, Any]) -> bool:
    """A serialized layer that is itself a model with layers (Functional, Sequential, Model)."""
    inner = layer_config.get("config")
    return isinstance(inner, dict) and isinstance(inner.get("layers"), list)


def layer_name(layer_config: dict[str, Any]) -> str:
    inner = layer_config.get("config")
    name = layer_config.get("name")
    if not isinstance(name, str) and isinstance(inner, dict):
        name = inner.get("name")
    return name if isinstance(name, str) else ""


def saved_layers(model_config: dict[str, Any]) -> list[dict[str, Any]]:
    """The layers in the order Keras saves their state (Sequential skips its InputLayer)."""
    layers = model_layer_configs(model_config)
    if model_config.get("class_name") == "Sequential" and layers:
        if layers[0].get("class_name") == "InputLayer":
            return layers[1:]
    return layers


def h5_get(group: Any, name: str) -> Any:
    name = name.strip("/")
    if not name:
        return group
    try:
        return group[name] if name in group else None
    except (KeyError, ValueError, OSError):
        return None


def attr_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def attr_list(value: Any) -> list[Any]:
    if value is None:
        return []
    try:
        return list(value)
    except TypeError:
        return [value]


def str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def itemsize(dtype: str) -> int:
    """Bytes per element of a NumPy dtype name; without importing NumPy for the usual ones."""
    known = dtype_bytes(dtype)
    if known is not None:
        return known
    import numpy as np

    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        return 0


def short_error(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
