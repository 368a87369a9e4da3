"""A TensorFlow SavedModel directory run the way TF Serving runs it: TensorFlow's loader, its
`serving_default` signature, inputs and outputs by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keras_cut.backend.native import keras_order
from keras_cut.core.errors import ArtifactError

SIGNATURE = "serving_default"


class SavedModelRunner:
    def __init__(self, path: Path) -> None:
        from keras_cut.backend.keras import loading
        from keras_cut.backend.savedmodel.metadata import read_record

        loading.keras_module()  # TensorFlow, its log noise silenced
        import tensorflow as tf

        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as exc:  # TensorFlow's loader raises many types
            raise ArtifactError(f"{path}: TensorFlow cannot load the SavedModel "
                                f"({loading.one_line(exc, 300)})") from exc
        signature = loaded.signatures.get(SIGNATURE)
        if signature is None:
            raise ArtifactError(f"{path}: the SavedModel has no {SIGNATURE!r} signature to run; "
                                "export it with Keras (model.export) or keras-cut")
        self._loaded, self._signature, self._tf = loaded, signature, tf
        specs = signature.structured_input_signature[1]
        outputs = signature.structured_outputs
        self.record_text: str | None = read_record(path)
        self.input_names: list[str] = sorted(specs)
        self.output_names: list[str] = keras_order(list(outputs))
        self.shapes: dict[str, tuple[int | None, ...]] = {
            name: tuple(spec.shape.as_list())
            for name, spec in [*specs.items(), *outputs.items()]}
        self.path = path

    def run(self, feed: dict[str, Any]) -> list[Any]:
        out = self._signature(**{name: self._tf.constant(feed[name])
                                 for name in self.input_names})
        return [out[name].numpy() for name in self.output_names]
