"""The weight file's index: every stored array's place, shape and dtype, checked against the
limits on hostile files, and matched to the layers of the config in Keras' storage order."""

from __future__ import annotations

import bisect
import math
from pathlib import Path
from typing import Any

from keras_cut.core.errors import ModelFileError, UnsafeModelError
from keras_cut.file.modelfile import (
    MAX_DATASET_EXPANSION,
    MAX_H5_DEPTH,
    MAX_H5_OBJECTS,
    MIN_BOMB_BYTES,
    DatasetIndex,
    NestedKey,
    WeightEntry,
    attr_list,
    attr_text,
    h5_get,
    is_model_config,
    layer_name,
    model_layer_configs,
    saved_layers,
)
from keras_cut.layers.naming import snake_case, unique_name


def scan_h5(path: Path, h5: Any, stored_size: int,
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


def scan_lite(path: Path, member: Any, stored_size: int) -> Any:
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


def scan_member(path: Path, member: Any, size: int) -> Any:
    """Groups, datasets and group attributes of the weight h5: in pure Python when the file
    is what Keras writes (no h5py import: most of `inspect`'s start-up), else with h5py."""
    from keras_cut.file import hdf5lite

    try:
        return scan_lite(path, member, size)
    except hdf5lite.Unsupported:
        pass
    import h5py

    member.seek(0)
    with h5py.File(member, "r") as h5:
        found = hdf5lite.Index()
        found.datasets = scan_h5(path, h5, stored_size=size, groups=found.groups)
        for group in found.groups:  # only what the index reads: a vars group's layer name
            if group.endswith("/vars") or group == "vars":
                name = h5[group].attrs.get("name")
                if name is not None:
                    found.attrs[group] = {"name": attr_text(name) or ""}
        return found


TRAINING_STATE = ("optimizer/",)


def index_keras_weights(
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


def index_h5_weights(
    path: Path, weights: Any, config: dict[str, Any], entries: DatasetIndex
) -> tuple[dict[NestedKey, list[WeightEntry]], list[str]]:
    """Map legacy `model_weights/<layer>/<weight_name>` arrays to layers by name."""
    index: dict[NestedKey, list[WeightEntry]] = {}
    claimed: set[str] = set()
    root = weights.name.strip("/") + "/"
    for layer in saved_layers(config):
        name = layer_name(layer)
        group = h5_get(weights, name)
        if group is None:
            continue
        weight_names = [attr_text(n) or "" for n in attr_list(group.attrs.get("weight_names"))]
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


def _storage_order(name: str) -> tuple[tuple[int, int, str], ...]:
    """Keras writes a layer's own `vars/N` first, then sub-objects (`cell/vars/N`) by name."""

    def key(part: str) -> tuple[int, int, str]:
        if part == "vars":
            return (0, 0, "")
        if part.isdigit():
            return (1, int(part), "")
        return (2, 0, part)

    return tuple(key(p) for p in name.split("/"))
