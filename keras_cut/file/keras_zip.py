"""Reading a Keras 3 `.keras` file: the zip's members, `config.json` and `metadata.json` (as
untrusted JSON, within size and depth limits), and the weight file's index."""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from keras_cut.core.errors import ModelFileError, UnsafeModelError
from keras_cut.core.packages import is_keras_module
from keras_cut.file.modelfile import (
    MAX_CONFIG_BYTES,
    MAX_ZIP_MEMBERS,
    MAX_ZIP_RATIO,
    MIN_RATIO_CHECK,
    ModelFile,
    short_error,
    str_or_none,
)
from keras_cut.file.weight_index import index_keras_weights, scan_member
from keras_cut.file.zipmember import open_member


def read_keras_zip(path: Path, weights: bool = True) -> ModelFile:
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
            config=check_model_config(path, config),
            keras_version=str_or_none(metadata.get("keras_version")),
            date_saved=str_or_none(metadata.get("date_saved")),
        )
        if not weights:
            return model
        if "model.weights.h5" in names:
            size = zf.getinfo("model.weights.h5").file_size
            try:
                with open_member(path, zf, "model.weights.h5") as member:
                    index = scan_member(path, member, size)
                model.arrays = index.datasets
                model.weights, model.stray_weights, model.groups = index_keras_weights(
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
    return parse_json(path, name, raw)


def parse_json(path: Path, what: str, raw: bytes | str) -> dict[str, Any]:
    if len(raw) > MAX_CONFIG_BYTES:
        raise UnsafeModelError(f"{path}: {what} is larger than any model config; refusing it")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{path}: {what} is not valid JSON ({short_error(exc)})") from exc
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


def check_model_config(path: Path, config: dict[str, Any]) -> dict[str, Any]:
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
