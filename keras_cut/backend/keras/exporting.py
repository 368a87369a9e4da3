"""A Keras model file exported as a deployable artifact by Keras itself (`Model.export`): LiteRT
(`.tflite`), ONNX (`.onnx`, through tf2onnx), OpenVINO IR (`.xml` and `.bin`, through OpenVINO's
converter) or a TensorFlow SavedModel (a directory). keras-cut writes no converter."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keras_cut.backend.keras import loading, running
from keras_cut.backend.native import quiet_native_logs
from keras_cut.core.errors import ArtifactError, KerasCutError

if TYPE_CHECKING:
    from keras_cut.backend.litert.keep_float import Chooser

UNKNOWN_DIM = 8  # a dimension the model leaves open, for the call Keras needs before export
# what each format's converter can quantize to
QUANTIZATIONS = {"litert": ("float16", "dynamic", "int8"), "onnx": ("dynamic",),
                 "openvino": ("float16",), "tf_saved_model": ()}
# the packages Keras imports lazily for a format, checked first to say what is missing
CONVERTERS = {"onnx": (("tf2onnx", "onnx"),), "openvino": (("openvino", "openvino"),
                                                           ("scipy", "openvino"))}


def export_file(model_path: Path, target: Path, fmt: str, unsafe: bool = False,
                custom_objects: dict[str, Any] | None = None, quantize: str | None = None,
                calibration: dict[str, Any] | None = None, model: Any = None,
                keep_float: Chooser | None = None) -> list[str]:
    """Load `model_path` (safe mode unless `unsafe`, compile=False; or take `model`, Keras'
    object already loaded from it), call it once (Keras
    refuses to export a model never called) and export it to `target` as `fmt`, quantized as
    `quantize` says (`calibration`: sample arrays by input name, for int8). Returns the
    layers of the model's outputs in the order Keras flattens them (the artifact's order).
    Every artifact names an input after its layer (OpenVINO's IR is renamed so).
    `keep_float` (int8 LiteRT): picks the converted model's operations to leave in float, and
    checks the quantized model."""
    keras = loading.keras_module()  # TensorFlow first, its log noise silenced
    for module, extra in CONVERTERS.get(fmt, ()):
        try:  # Keras imports these lazily: say what is missing before any work
            if module == "openvino":
                from keras_cut.backend.openvino import import_openvino

                import_openvino()  # before Keras imports it: without its telemetry
            else:
                importlib.import_module(module)
        except ImportError as exc:
            raise ArtifactError(f"{target}: exporting as {fmt} needs {module}, which is not "
                                f"installed; install it with pip install 'keras-cut[{extra}]'"
                                ) from exc
    if model is None:
        model = loading.load_model(model_path, unsafe=unsafe, custom_objects=custom_objects)
    _call_once(keras, model)
    try:
        with quiet_native_logs(), warnings.catch_warnings():
            # Keras' tf2onnx patch trips NumPy 2's FutureWarning about np.object
            warnings.simplefilter("ignore", FutureWarning)
            settings = _litert_settings(quantize, calibration) if fmt == "litert" else {}
            if keep_float is not None:
                from keras_cut.backend.litert.keep_float import CALIBRATE_ONLY

                settings[CALIBRATE_ONLY] = True
            model.export(str(target), format=fmt, verbose=False, **settings)
            if keep_float is not None:
                from keras_cut.backend.litert.keep_float import quantize_keeping_float

                quantize_keeping_float(target, keep_float)
        if fmt == "onnx" and quantize == "dynamic":
            _onnx_dynamic(target)
        if fmt == "openvino":
            from keras_cut.backend.openvino import metadata as openvino_ir

            openvino_ir.tidy(target, running.input_names(model), len(model.outputs))
            if quantize == "float16":
                openvino_ir.compress_to_float16(target)
    except KerasCutError:  # keep_float's own: a layer with no operation of its own
        raise
    except Exception as exc:  # a converter's refusal: an op it has no kernel for, a dtype
        detail = loading.one_line(exc, 400)
        hint = ("TensorFlow names its operations after the layers and refuses this name "
                "(spaces, most punctuation, letters outside ASCII); rename the layer in the "
                "model" if "not a valid scope name" in detail else
                "a SavedModel signature names its inputs after the input layers and "
                "TensorFlow refuses these names; rename the input layers, or export to "
                "another format" if "non-flat/non-unique argument names" in detail else
                "cut elsewhere or choose another format")
        raise ArtifactError(
            f"{target}: Keras could not export the submodel as {fmt} ({detail}); {hint}"
        ) from exc
    return [key.layer for key in running.model_function(model)[1]]


def _call_once(keras: Any, model: Any) -> None:
    """Keras exports only a model that was called: a symbolic call (on new Keras inputs of the
    model's own shapes, milliseconds) marks it so; an eager call on zeros where a layer cannot
    be called symbolically."""
    import numpy as np

    try:
        symbols = [keras.Input(batch_shape=kt.shape, dtype=kt.dtype) for kt in model.inputs]
        model(keras.tree.pack_sequence_as(model.input, symbols))
        return
    except Exception:  # noqa: BLE001  (a layer's symbolic rules refuse: run it for real)
        pass
    values = []
    for kt in model.inputs:
        shape = (1, *(UNKNOWN_DIM if d is None else d for d in kt.shape[1:]))
        values.append(np.zeros(shape, dtype=kt.dtype))
    model(keras.tree.pack_sequence_as(model.input, values), training=False)


def _litert_settings(quantize: str | None, calibration: dict[str, Any] | None
                     ) -> dict[str, Any]:
    """LiteRT converter settings (Keras passes them to TensorFlow's converter)."""
    if quantize is None:
        return {}
    import tensorflow as tf

    settings: dict[str, Any] = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if quantize == "float16":
        settings["target_spec"] = {"supported_types": [tf.float16]}
    elif quantize == "int8":
        arrays = calibration or {}
        count = min((len(a) for a in arrays.values()), default=0)

        def samples() -> Any:
            for i in range(count):
                yield {name: a[i:i + 1] for name, a in arrays.items()}

        settings["representative_dataset"] = samples
    return settings


def _onnx_dynamic(target: Path) -> None:
    """ONNX Runtime's dynamic quantization: int8 weights, activations quantized at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = target.with_name(target.name + ".q")
    try:
        quantize_dynamic(str(target), str(quantized), weight_type=QuantType.QInt8)
        quantized.replace(target)
    finally:
        quantized.unlink(missing_ok=True)
