"""Reading a legacy `.h5` file (Keras 3 or tf.keras 2): the `model_config` attribute and the
`model_weights` group."""

from __future__ import annotations

from pathlib import Path

from keras_cut.core.errors import ModelFileError
from keras_cut.file.keras_zip import check_model_config, parse_json
from keras_cut.file.modelfile import ModelFile, attr_text, short_error
from keras_cut.file.weight_index import index_h5_weights, scan_h5


def read_legacy_h5(path: Path) -> ModelFile:
    import h5py

    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise ModelFileError(
            f"{path}: the HDF5 file is damaged or truncated ({short_error(exc)}); "
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
            config = check_model_config(path, parse_json(path, "model_config", raw))
            model = ModelFile(
                path=path,
                format="h5",
                config=config,
                keras_version=attr_text(attrs.get("keras_version")),
                backend=attr_text(attrs.get("backend")),
            )
            entries = scan_h5(path, h5, stored_size=path.stat().st_size)
            model.arrays = entries
            if "model_weights" in h5:
                model.weights, model.stray_weights = index_h5_weights(
                    path, h5["model_weights"], config, entries
                )
            return model
    except (OSError, KeyError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: the HDF5 file is damaged ({short_error(exc)})") from exc
