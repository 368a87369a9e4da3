"""Loading a model file into Keras the way keras-cut read it: a built copy of a class-saved
model, Keras' own loader, or a tf.keras 2 file through the normalised config."""

from __future__ import annotations

from typing import Any

from keras_cut.backend.keras import loading, materialize
from keras_cut.core.errors import LoadError


def load_saved_model(model_file: Any, unsafe: bool = False,
                custom_objects: dict[str, Any] | None = None) -> tuple[Any, str | None]:
    """The model `model_file` describes, as keras-cut read it (a parent or a submodel alike).

    Keras' own loader; for a tf.keras 2 file it refuses, the normalised config instead.

    Returns the model and, when normalisation was needed, a sentence saying so. A model
    saved as its class, whose graph keras-cut built with --custom-objects, is that same
    object (`materialize`), so its layers carry the names keras-cut read."""
    if getattr(model_file, "storage", None) is not None:
        built = materialize.built_model(model_file.storage)
        if built is not None:
            return built, None
    try:
        return loading.load_model(model_file.path, unsafe, custom_objects), None
    except LoadError:
        if not model_file.legacy:
            raise
    model = loading.load_normalized(model_file, unsafe, custom_objects)
    changes = len(model_file.legacy_changes)
    return model, (
        f"{model_file.path} is a tf.keras 2 file Keras 3 refuses; it was loaded through "
        f"keras-cut's legacy normalisation ({changes} change(s), see `keras-cut inspect`) "
        "with weights assigned by layer and weight name"
    )
