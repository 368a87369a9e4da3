"""Read a saved Keras model without TensorFlow: its config, metadata and an index of its weights.

Nothing from the file is executed and nothing is extracted to disk. Both layouts are handled:
- `.keras`: a zip holding `config.json`, `metadata.json` and `model.weights.h5`;
- legacy `.h5`: one HDF5 file with a `model_config` attribute and a `model_weights` group.
The file kind is decided by its bytes, not its extension.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import json
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from keras_cut.core.dtypes import dtype_bytes
from keras_cut.core.errors import ModelFileError, UnsafeModelError
from keras_cut.core.packages import is_keras_module
from keras_cut.layers.naming import snake_case, unique_name

ZIP_MAGIC = b"PK\x03\x04"
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
        return self.size * _itemsize(self.dtype)


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


def read_model_file(path: str | Path, weights: bool = True) -> ModelFile:
    """Open `path` and return its config, metadata and weight index; raise ModelFileError.

    A tf.keras 2 config is normalised into what Keras 3 accepts, each change recorded. With
    `weights=False` a `.keras` file's weights are not indexed (its layer names are enough for
    shell completion; nothing else may use such a ModelFile)."""
    model = _read_model_file(Path(path), weights)
    if is_legacy(model.config, model.keras_version):
        from keras_cut.layers import legacy

        model.config, model.legacy_changes = legacy.normalize(model.config, str(model.path))
        model.legacy = True
    return model


def is_legacy(config: dict[str, Any], keras_version: str | None) -> bool:
    """A tf.keras 2 (Keras 2.x) config: its version says so, or its calls are list-form."""
    if keras_version and keras_version.split(".")[0] in ("1", "2"):
        return True
    return any(isinstance(node, list) for node in _all_nodes(config))


def _all_nodes(config: dict[str, Any]) -> list[Any]:
    found = []
    stack = [config]
    while stack:
        model = stack.pop()
        inner = model.get("config") if isinstance(model, dict) else None
        if not isinstance(inner, dict) or not isinstance(inner.get("layers"), list):
            continue
        for layer in inner["layers"]:
            if isinstance(layer, dict):
                nodes = layer.get("inbound_nodes")
                if isinstance(nodes, list):  # untrusted: anything else is reported later
                    found.extend(nodes)
                stack.append(layer)
    return found


def _read_model_file(path: Path, weights: bool = True) -> ModelFile:
    if not path.exists():
        raise ModelFileError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise ModelFileError(
            f"{path}: is a directory; give a .keras or .h5 model file "
            "(SavedModel folders are not supported)"
        )
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not head:
        raise ModelFileError(f"{path}: the file is empty; re-save the model")
    if head.startswith(ZIP_MAGIC):
        return _read_keras_zip(path, weights)
    if head == H5_MAGIC:
        return _read_legacy_h5(path)
    raise ModelFileError(
        f"{path}: not a Keras model file (neither a .keras zip nor an HDF5 .h5); "
        "check that the file is complete"
    )


# --- .keras zip -------------------------------------------------------------------------------


def _read_keras_zip(path: Path, weights: bool = True) -> ModelFile:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelFileError(
            f"{path}: the zip is damaged or truncated ({exc}); re-save or re-download it"
        ) from exc
    with zf:
        infos = zf.infolist()
        _check_zip_members(path, infos)
        names = {info.filename for info in infos}
        if "config.json" not in names:
            if any(n.endswith(".h5") for n in names):
                raise ModelFileError(
                    f"{path}: the zip has no config.json, so it holds no architecture; "
                    "save the whole model with model.save('model.keras')"
                )
            raise ModelFileError(f"{path}: not a .keras model (no config.json in the zip)")
        config = _load_json_member(path, zf, "config.json")
        metadata = _load_json_member(path, zf, "metadata.json") if "metadata.json" in names else {}
        model = ModelFile(
            path=path,
            format="keras",
            config=_check_model_config(path, config),
            keras_version=_str_or_none(metadata.get("keras_version")),
            date_saved=_str_or_none(metadata.get("date_saved")),
        )
        if not weights:
            return model
        if "model.weights.h5" in names:
            size = zf.getinfo("model.weights.h5").file_size
            try:
                with open_member(path, zf, "model.weights.h5") as member:
                    index = _scan_member(path, member, size)
                model.arrays = index.datasets
                model.weights, model.stray_weights, model.groups = _index_keras_weights(
                    model.config, index)
            except (OSError, zipfile.BadZipFile, RuntimeError, KeyError, ValueError,
                    EOFError, zlib.error) as exc:
                # h5py's errors for damaged HDF5 metadata (a broken link table, a bad heap)
                raise ModelFileError(
                    f"{path}: model.weights.h5 inside the zip is damaged ({exc}); "
                    "re-save or re-download the model"
                ) from exc
        elif any(n.endswith(".npz") or "weights" in n for n in names):
            raise ModelFileError(
                f"{path}: this .keras file stores weights in a form keras-cut does not read "
                f"({', '.join(sorted(n for n in names if 'weights' in n))}); "
                "re-save it with model.save('model.keras')"
            )
        return model


_PREADV = getattr(os, "preadv", None)


class _StoredMember(io.RawIOBase):
    """A read-only, seekable view of an uncompressed zip member, straight from the file.

    h5py seeks a lot; zipfile's own member objects make each backward seek re-read the member,
    which costs seconds on a 100 MB weight file. Keras stores weights uncompressed.
    """

    def __init__(self, path: Path, info: zipfile.ZipInfo):
        self._fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
        self._fh.seek(info.header_offset)
        header = self._fh.read(30)
        if len(header) != 30 or header[:4] != ZIP_MAGIC:
            self._fh.close()
            raise zipfile.BadZipFile(f"bad local header for {info.filename}")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        self._start = info.header_offset + 30 + name_len + extra_len
        self._size = info.file_size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        count = max(0, min(len(buffer), self._size - self._pos))
        if count == 0:
            return 0
        view = memoryview(buffer).cast("B")[:count]
        if _PREADV is not None:  # straight into HDF5's buffer: no seek, no copy
            done = _PREADV(self._fh.fileno(), [view], self._start + self._pos)
        else:
            self._fh.seek(self._start + self._pos)
            done = self._fh.readinto(view)
        self._pos += done
        return done

    def pread(self, offset: int, count: int) -> bytes:
        """`count` bytes at `offset` in the member (fewer at its end), without seeking."""
        count = max(0, min(count, self._size - offset))
        return os.pread(self._fh.fileno(), count, self._start + offset) if count else b""

    def close(self) -> None:
        self._fh.close()
        super().close()


def open_member(path: Path, zf: zipfile.ZipFile, name: str) -> Any:
    """A seekable reader for a zip member: a direct view when stored, zipfile's otherwise."""
    info = zf.getinfo(name)
    if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
        return _StoredMember(path, info)
    return zf.open(name)


def _check_zip_members(path: Path, infos: list[zipfile.ZipInfo]) -> None:
    if len(infos) > MAX_ZIP_MEMBERS:
        raise UnsafeModelError(f"{path}: the zip has {len(infos)} members; refusing to read it")
    for info in infos:
        name = info.filename
        parts = PurePosixPath(name).parts
        if (
            name.startswith(("/", "\\"))
            or "\\" in name
            or ".." in parts
            or (len(name) > 1 and name[1] == ":")
            or "\x00" in name
        ):
            raise UnsafeModelError(
                f"{path}: the zip has a member with a path trick ({name!r}); refusing to read it"
            )
        if (
            info.file_size > MIN_RATIO_CHECK
            and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1)
        ):
            raise UnsafeModelError(
                f"{path}: zip member {name!r} declares {info.file_size} bytes from "
                f"{info.compress_size} stored (a zip bomb?); refusing to read it"
            )


def _load_json_member(path: Path, zf: zipfile.ZipFile, name: str) -> dict[str, Any]:
    info = zf.getinfo(name)
    if info.file_size > MAX_CONFIG_BYTES:
        raise UnsafeModelError(
            f"{path}: {name} declares {info.file_size} bytes, far more than any model "
            "config; refusing to read it"
        )
    try:
        with zf.open(name) as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ModelFileError(
            f"{path}: {name} in the zip is damaged ({exc}); re-save or re-download the model"
        ) from exc
    return _parse_json(path, name, raw)


def _parse_json(path: Path, what: str, raw: bytes | str) -> dict[str, Any]:
    if len(raw) > MAX_CONFIG_BYTES:
        raise UnsafeModelError(f"{path}: {what} is larger than any model config; refusing it")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{path}: {what} is not valid JSON ({_short(exc)})") from exc
    if not isinstance(value, dict):
        raise ModelFileError(f"{path}: {what} is not a JSON object, so not a model config")
    if json_depth(value) > MAX_CONFIG_DEPTH:
        raise UnsafeModelError(f"{path}: {what} nests deeper than {MAX_CONFIG_DEPTH} levels, "
                               "deeper than any model config; refusing it")
    return value


# Keras configs nest a few dozen levels (models in models, wrappers, serialized objects); the
# code that reads them recurses, so deeper ones are refused up front
MAX_CONFIG_DEPTH = 256


def json_depth(value: Any) -> int:
    """How deeply a JSON value nests (iteratively: a hostile value must not exhaust the
    stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _check_model_config(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(config.get("class_name"), str) or not isinstance(
        config.get("config"), dict
    ):
        raise ModelFileError(
            f"{path}: the config is not a serialized Keras model "
            "(no 'class_name' and 'config'); was it saved with model.save()?"
        )
    module = config.get("module")
    keras_own = module is None or (isinstance(module, str) and is_keras_module(module))
    if config["class_name"] in ("Functional", "Sequential") and keras_own and \
            not isinstance(config["config"].get("layers"), list):
        raise ModelFileError(
            f"{path}: the {config['class_name']} model's config has no list of layers, which "
            "Keras always writes; the file is damaged"
        )
    return config


# --- legacy .h5 -------------------------------------------------------------------------------


def _read_legacy_h5(path: Path) -> ModelFile:
    import h5py

    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise ModelFileError(
            f"{path}: the HDF5 file is damaged or truncated ({_short(exc)}); "
            "re-save or re-download it"
        ) from exc
    try:
        with h5:
            attrs = h5.attrs
            if "model_config" not in attrs:
                if "layer_names" in attrs or "layers" in h5 or "vars" in h5:
                    raise ModelFileError(
                        f"{path}: holds only weights, no architecture (saved with "
                        "save_weights); load it into its model in Python and save with "
                        "model.save('model.keras')"
                    )
                raise ModelFileError(
                    f"{path}: an HDF5 file but not a Keras model (no model_config attribute)"
                )
            raw = attrs["model_config"]
            if isinstance(raw, bytes):
                raw = raw.decode("utf-8", errors="replace")
            if not isinstance(raw, str):
                raise ModelFileError(f"{path}: the model_config attribute is not text")
            config = _check_model_config(path, _parse_json(path, "model_config", raw))
            model = ModelFile(
                path=path,
                format="h5",
                config=config,
                keras_version=attr_text(attrs.get("keras_version")),
                backend=attr_text(attrs.get("backend")),
            )
            entries = _scan_h5(path, h5, stored_size=path.stat().st_size)
            model.arrays = entries
            if "model_weights" in h5:
                model.weights, model.stray_weights = _index_h5_weights(
                    path, h5["model_weights"], config, entries
                )
            return model
    except (OSError, KeyError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: the HDF5 file is damaged ({_short(exc)})") from exc


# --- h5 scanning and the weight index ---------------------------------------------------------


def _scan_h5(path: Path, h5: Any, stored_size: int,
             groups: set[str] | None = None) -> DatasetIndex:
    """Every dataset in the file with its shape and dtype; refuse links, externals and bombs.

    `groups`, when given, receives every group's path."""
    import h5py

    found: DatasetIndex = {}
    seen = 0

    def walk(group: Any, prefix: str, depth: int) -> None:
        # h5py's low-level calls: one link lookup and one open per name (this walk is most of
        # the time `inspect` and `cut` spend in HDF5)
        nonlocal seen
        if depth > MAX_H5_DEPTH:
            raise UnsafeModelError(f"{path}: HDF5 groups nest deeper than {MAX_H5_DEPTH}")
        gid = group.id
        for name in group:
            seen += 1
            if seen > MAX_H5_OBJECTS:
                raise UnsafeModelError(f"{path}: the HDF5 file has too many objects")
            # h5py hands a name that is not UTF-8 over as bytes
            encoded = name if isinstance(name, bytes) else name.encode()
            name = encoded.decode("utf-8", "surrogateescape")
            full = f"{prefix}{name}"
            link_type = gid.links.get_info(encoded).type
            if link_type != h5py.h5l.TYPE_HARD:
                kind = "soft" if link_type == h5py.h5l.TYPE_SOFT else "external"
                raise UnsafeModelError(
                    f"{path}: HDF5 {kind} link at {full!r}; refusing to follow it"
                )
            oid = h5py.h5o.open(gid, encoded)
            kind = h5py.h5i.get_type(oid)
            if kind == h5py.h5i.GROUP:
                if groups is not None:
                    groups.add(full)
                walk(h5py.Group(oid), full + "/", depth + 1)
            elif kind == h5py.h5i.DATASET:
                found[full] = _check_dataset(path, full, h5py.Dataset(oid), stored_size)

    walk(h5, "", 0)
    return found


def _check_dataset(path: Path, name: str, ds: Any, stored_size: int) -> tuple[tuple[int, ...], str]:
    if ds.external:
        raise UnsafeModelError(f"{path}: dataset {name!r} reads an external file; refusing it")
    if ds.is_virtual:
        raise UnsafeModelError(f"{path}: dataset {name!r} is virtual; refusing it")
    shape = tuple(int(d) for d in (ds.shape or ()))
    # bfloat16 is stored as 2-byte data with a "dtype" attribute; only those need reading it
    dtype = "bfloat16" if ds.dtype.itemsize == 2 and \
        attr_text(ds.attrs.get("dtype")) == "bfloat16" else ds.dtype.name
    declared = math.prod(shape) * ds.dtype.itemsize
    if declared > MIN_BOMB_BYTES:
        _check_bytes(path, name, shape, declared, ds.id.get_storage_size(), stored_size)
    return shape, dtype


def _check_bytes(path: Path, name: str, shape: tuple[int, ...], declared: int, stored: int,
                 stored_size: int) -> None:
    """Refuse a dataset declaring far more bytes than it (or the whole file) stores."""
    if declared > MIN_BOMB_BYTES and (
            declared > MAX_DATASET_EXPANSION * max(stored, 1)
            or declared > MAX_DATASET_EXPANSION * max(stored_size, 1)):
        raise UnsafeModelError(
            f"{path}: dataset {name!r} declares shape {shape} ({declared} bytes) but "
            f"stores {stored} bytes (a shape bomb?); refusing it"
        )


def _scan_lite(path: Path, member: Any, stored_size: int) -> Any:
    """The weight file's index without h5py (`hdf5lite`); raises hdf5lite.Unsupported for
    anything outside the subset Keras writes, which h5py then reads."""
    from keras_cut.file import hdf5lite

    def read(offset: int, count: int) -> bytes:
        if hasattr(member, "pread"):
            return member.pread(offset, count)
        member.seek(offset)
        return member.read(count)

    def check(name: str, shape: tuple[int, ...], itemsize: int, stored: int) -> None:
        _check_bytes(path, name, shape, math.prod(shape) * itemsize, stored, stored_size)

    return hdf5lite.scan(read, stored_size, (MAX_H5_OBJECTS, MAX_H5_DEPTH),
                         lambda message: UnsafeModelError(f"{path}: {message}"), check)


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


def _scan_member(path: Path, member: Any, size: int) -> Any:
    """Groups, datasets and group attributes of the weight h5: in pure Python when the file
    is what Keras writes (no h5py import: most of `inspect`'s start-up), else with h5py."""
    from keras_cut.file import hdf5lite

    try:
        return _scan_lite(path, member, size)
    except hdf5lite.Unsupported:
        pass
    import h5py

    member.seek(0)
    with h5py.File(member, "r") as h5:
        found = hdf5lite.Index()
        found.datasets = _scan_h5(path, h5, stored_size=size, groups=found.groups)
        for group in found.groups:  # only what the index reads: a vars group's layer name
            if group.endswith("/vars") or group == "vars":
                name = h5[group].attrs.get("name")
                if name is not None:
                    found.attrs[group] = {"name": attr_text(name) or ""}
        return found


TRAINING_STATE = ("optimizer/",)


def _index_keras_weights(
    config: dict[str, Any], scanned: Any
) -> tuple[dict[NestedKey, list[WeightEntry]], list[str], dict[NestedKey, str]]:
    """Map `.keras` weight groups (named by class, `dense_1`) to layers (named by name).

    `scanned` (an hdf5lite.Index) holds every group's path and a vars group's saved layer
    name: looking a path up in HDF5 costs ~20 µs. Returns the arrays per layer, the arrays
    no layer accounts for, and each layer's group."""
    index = _KerasWeightIndex(scanned)
    index.walk(config, "", ())
    # Keras saves a compiled model's optimizer beside it: training state, read only to resume
    index.claimed.update(p for p in index.entries if p.startswith(TRAINING_STATE))
    stray = sorted(set(index.entries) - index.claimed)
    return index.index, stray, index.groups


class _KerasWeightIndex:
    def __init__(self, scanned: Any):
        self.scanned = scanned
        self.entries: DatasetIndex = scanned.datasets
        self.h5_groups: set[str] = scanned.groups
        self.children: dict[str, list[str]] = {}
        for group in self.h5_groups:
            parent, _, leaf = group.rpartition("/")
            self.children.setdefault(parent, []).append(leaf)
        self.index: dict[NestedKey, list[WeightEntry]] = {}
        self.groups: dict[NestedKey, str] = {}
        self.claimed: set[str] = set()
        self.ordered = sorted(self.entries)

    def claim(self, prefix: str, key: NestedKey, own_vars: bool) -> None:
        """The arrays under `prefix` for the layer `key` (a model's: only its own `vars/`)."""
        found = []
        for i in range(bisect.bisect_left(self.ordered, prefix), len(self.ordered)):
            full = self.ordered[i]  # sorted, so the paths under prefix come together
            if not full.startswith(prefix):
                break
            rest = full[len(prefix):]
            if full in self.claimed or (own_vars and not rest.startswith("vars/")):
                continue  # a model's own arrays are its `vars`; its layers are claimed apart
            shape, dtype = self.entries[full]
            found.append(WeightEntry(rest, shape, dtype, full))
        found.sort(key=lambda e: _storage_order(e.name))
        self.claimed.update(entry.h5_path for entry in found)
        if found:
            self.index[key] = found

    def saved_names(self, group_path: str) -> dict[str, str]:
        """Layer name -> its group, where the group's `vars` records the name."""
        by_attr = {}
        if group_path + "layers" in self.h5_groups:
            for gname in sorted(self.children.get(group_path + "layers", [])):
                saved_name = self.scanned.attrs.get(f"{group_path}layers/{gname}/vars",
                                                    {}).get("name")
                if saved_name is not None:
                    by_attr[saved_name] = gname
        return by_attr

    def walk(self, model_config: dict[str, Any], group_path: str, key: NestedKey) -> None:
        self.claim(group_path, key, own_vars=True)  # the model's own variables, if any
        used: dict[str, int] = {}
        by_attr = self.saved_names(group_path)
        for layer in saved_layers(model_config):
            expected = unique_name(snake_case(str(layer.get("class_name", ""))), used)
            name = layer_name(layer)
            gname = by_attr.get(name, expected)
            child_path = f"{group_path}layers/{gname}/"
            if child_path.rstrip("/") in self.h5_groups:
                self.groups[key + (name,)] = child_path.rstrip("/")
            if is_model_config(layer):
                self.walk(layer, child_path, key + (name,))
            else:
                self.claim(child_path, key + (name,), own_vars=False)


def _index_h5_weights(
    path: Path, weights: Any, config: dict[str, Any], entries: DatasetIndex
) -> tuple[dict[NestedKey, list[WeightEntry]], list[str]]:
    """Map legacy `model_weights/<layer>/<weight_name>` arrays to layers by name."""
    index: dict[NestedKey, list[WeightEntry]] = {}
    claimed: set[str] = set()
    root = weights.name.strip("/") + "/"
    for layer in saved_layers(config):
        name = layer_name(layer)
        group = _h5_get(weights, name)
        if group is None:
            continue
        weight_names = [attr_text(n) or "" for n in _attr_list(group.attrs.get("weight_names"))]
        nested = _nested_leaf_names(layer) if is_model_config(layer) else {}
        for weight_name in weight_names:
            full = root + name + "/" + weight_name
            if full not in entries:
                raise ModelFileError(
                    f"{path}: layer {name!r} lists weight {weight_name!r} but the file has no "
                    "such array; the file is damaged"
                )
            shape, dtype = entries[full]
            key, short = _owner_of(name, weight_name, nested)
            index.setdefault(key, []).append(WeightEntry(short, shape, dtype, full))
            claimed.add(full)
    stray = sorted(p for p in entries if p.startswith(root) and p not in claimed)
    return index, stray


def _nested_leaf_names(
    model_config: dict[str, Any], prefix: NestedKey = ()
) -> dict[str, NestedKey]:
    """Leaf layer name -> path inside a nested model (legacy h5 stores them flat)."""
    found: dict[str, NestedKey] = {}
    for layer in model_layer_configs(model_config):
        name = layer_name(layer)
        if is_model_config(layer):
            found.update(_nested_leaf_names(layer, prefix + (name,)))
        else:
            found.setdefault(name, prefix + (name,))
    return found


def _owner_of(top: str, weight_name: str, nested: dict[str, NestedKey]) -> tuple[NestedKey, str]:
    """Which layer a legacy weight name ("conv1/kernel:0") belongs to, and its short name."""
    clean = weight_name[:-2] if weight_name.endswith(":0") else weight_name
    parts = clean.split("/")
    if nested:
        for i, part in enumerate(parts[:-1]):
            if part in nested:
                return (top,) + nested[part], "/".join(parts[i + 1 :])
        return (top,), clean
    if len(parts) > 1 and parts[0] == top:
        return (top,), "/".join(parts[1:])
    return (top,), clean


# --- small helpers ----------------------------------------------------------------------------


def _storage_order(name: str) -> tuple[tuple[int, int, str], ...]:
    """Keras writes a layer's own `vars/N` first, then sub-objects (`cell/vars/N`) by name."""

    def key(part: str) -> tuple[int, int, str]:
        if part == "vars":
            return (0, 0, "")
        if part.isdigit():
            return (1, int(part), "")
        return (2, 0, part)

    return tuple(key(p) for p in name.split("/"))


def _h5_get(group: Any, name: str) -> Any:
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


def _attr_list(value: Any) -> list[Any]:
    if value is None:
        return []
    try:
        return list(value)
    except TypeError:
        return [value]


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _itemsize(dtype: str) -> int:
    """Bytes per element of a NumPy dtype name; without importing NumPy for the usual ones."""
    known = dtype_bytes(dtype)
    if known is not None:
        return known
    import numpy as np

    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        return 0


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
