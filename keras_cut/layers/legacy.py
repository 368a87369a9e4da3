"""tf.keras 2 files: recognise their config dialect and normalise it into what Keras 3 accepts.

Every change is recorded, so that `inspect` can list it and nothing changes silently:
- tf.keras 2 counts a nested model's own creation as its call 0, so the outer graph refers to
  its first real call as 1; Keras 3 counts from 0 (calls are renumbered);
- arguments Keras 3 no longer accepts are dropped where they carry no meaning
  (`DepthwiseConv2D(groups=1)`); any other value is an error naming the layer and argument.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from keras_cut.core.errors import ModelFileError
from keras_cut.core.jsonvalues import as_dict
from keras_cut.layers import known
from keras_cut.layers.tfops import LEGACY_SEMANTICS


@dataclass(frozen=True)
class LegacyChange:
    layer: str  # layer path
    message: str


def normalize(config: dict[str, Any], where: str) -> tuple[dict[str, Any], list[LegacyChange]]:
    """A copy of a tf.keras 2 model config that Keras 3 (and keras-cut's graph) accept."""
    config = copy.deepcopy(config)
    changes: list[LegacyChange] = []
    _normalize_model(config, "", changes, where)
    return config, changes


def _normalize_model(model: dict[str, Any], prefix: str, changes: list[LegacyChange],
                     where: str) -> None:
    inner = model.get("config")
    if not isinstance(inner, dict) or not isinstance(inner.get("layers"), list):
        return
    layers = [layer for layer in inner["layers"] if isinstance(layer, dict)]
    for layer in layers:
        name = layer.get("name") or (layer.get("config") or {}).get("name") or "?"
        path = prefix + str(name)
        if isinstance(layer.get("config"), dict) and isinstance(
            layer["config"].get("layers"), list
        ):
            _normalize_model(layer, path + "/", changes, where)
        _drop_arguments(layer, path, changes, where)
        _semantic_hazards(layer)
    if model.get("class_name") != "Sequential":
        _renumber_nested_calls(inner, layers, prefix, changes)
        _translate_tf_ops(inner, prefix, changes)
        _tensor_kwargs_as_keras_3(inner, prefix, changes)
        for layer in layers:  # a functional model's InputLayers give the shapes
            config = layer.get("config")
            if layer.get("class_name") != "InputLayer" and isinstance(config, dict) \
                    and "batch_input_shape" in config:
                del config["batch_input_shape"]
                name = layer.get("name") or config.get("name") or "?"
                changes.append(LegacyChange(
                    prefix + str(name), f"legacy config: {layer.get('class_name')} "
                    "`batch_input_shape` dropped (the model's InputLayer gives the shape; "
                    "Keras 3 warns about it on a layer)"))


def _drop_arguments(layer: dict[str, Any], path: str, changes: list[LegacyChange],
                    where: str) -> None:
    config = layer.get("config")
    kind = known.entry(str(layer.get("class_name")))
    if kind.wrapper and isinstance(config, dict):
        for key in ("layer", "backward_layer"):
            if isinstance(config.get(key), dict):
                _drop_arguments(config[key], path, changes, where)
    config = layer.get("config")
    for argument in kind.legacy_build_records:
        if isinstance(config, dict) and argument in config:
            del config[argument]
            changes.append(LegacyChange(
                path, f"legacy config: {layer['class_name']} `{argument}` dropped (a record of "
                "its build; Keras 3 builds from the call)"))
    _one_axis(layer, path, changes, where)
    if not kind.legacy_dropped or not isinstance(config, dict):
        return
    for argument, harmless in kind.legacy_dropped:
        if argument not in config:
            continue
        if config[argument] != harmless:
            raise ModelFileError(
                f"{where}: layer {path!r} ({layer['class_name']}) has {argument}="
                f"{config[argument]!r}, which Keras 3 cannot express; keras-cut cannot map "
                "this legacy config"
            )
        del config[argument]
        changes.append(LegacyChange(
            path, f"legacy config: {layer['class_name']} `{argument}={harmless}` dropped "
            "(Keras 3 does not take it; it had no effect)"))


# Names Keras 3 resolves to a function that computes something else than tf.keras 2's
SAME_NAME_OTHER_FUNCTION = {
    "hard_sigmoid": "tf.keras 2's hard_sigmoid is clip(0.2x + 0.5, 0, 1), Keras 3's is "
                    "clip(x/6 + 0.5, 0, 1)",
}


def _semantic_hazards(layer: dict[str, Any]) -> None:
    """A layer whose config names an activation Keras 3 computes differently (anywhere in it:
    a wrapped layer's, an RNN's recurrent one) is marked, so that it is a finding, never kept
    in a Keras 3 file, and never run as the reference of verify."""
    stack: list[tuple[str, Any]] = [("", layer.get("config"))]
    while stack:
        key, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.items())
        elif isinstance(value, list):
            stack.extend((key, v) for v in value)
        elif isinstance(value, str) and "activation" in key and \
                value in SAME_NAME_OTHER_FUNCTION:
            why = (f"{key}={value!r}: {SAME_NAME_OTHER_FUNCTION[value]}; Keras 3 would compute "
                   "other values, so keras-cut keeps this layer only in tf.keras 2's .h5")
            layer[LEGACY_SEMANTICS] = why  # a finding of its own (safety), not a change
            return


# classes whose `axis` Keras 3 takes as one int, where tf.keras 2 may write a one-element list
# (a BatchNormalization inside TimeDistributed)
ONE_AXIS = ("BatchNormalization",)


def _one_axis(layer: dict[str, Any], path: str, changes: list[LegacyChange], where: str) -> None:
    config = layer.get("config")
    if layer.get("class_name") not in ONE_AXIS or not isinstance(config, dict) or \
            not isinstance(config.get("axis"), list):
        return
    axis = config["axis"]
    if len(axis) != 1 or not isinstance(axis[0], int) or isinstance(axis[0], bool):
        raise ModelFileError(f"{where}: layer {path!r} ({layer['class_name']}) normalises over "
                             f"axes {axis!r}; Keras 3 takes one axis, so keras-cut cannot map "
                             "this legacy config")
    config["axis"] = axis[0]
    changes.append(LegacyChange(path, f"legacy config: {layer['class_name']} `axis={axis}` "
                                f"written as {axis[0]} (Keras 3 takes one axis)"))


def _translate_tf_ops(inner: dict[str, Any], prefix: str, changes: list[LegacyChange]) -> None:
    """TFOpLambda layers as Keras 3 operations where `tfops` knows a faithful translation."""
    from keras_cut.layers import tfops

    for i, layer in enumerate(inner["layers"]):
        if not isinstance(layer, dict) or not tfops.is_tf_op(layer):
            continue
        config = as_dict(layer.get("config"))
        path = prefix + str(layer.get("name") or config.get("name") or "?")
        try:
            translated = tfops.translate(layer)
        except tfops.Untranslatable as exc:
            changes.append(LegacyChange(path, f"legacy config: not translated ({exc}); Keras "
                                              "3 cannot load this layer"))
            continue
        inner["layers"][i] = translated
        changes.append(LegacyChange(
            path, f"legacy config: TensorFlow operation tf.{config.get('function')} translated "
                  f"to the Keras 3 operation {translated['module'].rsplit('.', 1)[-1]}."
                  f"{translated['class_name']}"))


def _tensor_kwargs_as_keras_3(inner: dict[str, Any], prefix: str,
                              changes: list[LegacyChange]) -> None:
    """A call that passes a tensor by keyword (MultiHeadAttention's `value`): Keras 3 reads
    tf.keras 2's list form without turning `["bilstm", 0, 0]` into a tensor, so such a call is
    written in Keras 3's form, which says which arguments are tensors."""
    from keras_cut.layers.tfops import _is_ref, _tensor

    def convert(value: Any) -> Any:
        if _is_ref(value) and len(value) == 3:
            return _tensor(value)
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    for layer in inner["layers"]:
        if not isinstance(layer, dict) or not isinstance(layer.get("inbound_nodes"), list):
            continue
        for i, node in enumerate(layer["inbound_nodes"]):
            entries = node if isinstance(node, list) and node and all(
                _is_ref(e) for e in node) else None
            if entries is None:
                continue
            kwargs = entries[0][3] if len(entries[0]) > 3 and isinstance(entries[0][3],
                                                                         dict) else {}
            if not any(convert(v) != v for v in kwargs.values()):
                continue
            tensors = [_tensor(e) for e in entries]
            layer["inbound_nodes"][i] = {
                "args": [tensors[0] if len(tensors) == 1 else tensors],
                "kwargs": {key: convert(value) for key, value in kwargs.items()},
            }
            name = layer.get("name") or "?"
            changes.append(LegacyChange(
                prefix + str(name), f"legacy config: call {i} passes a tensor by keyword "
                f"({', '.join(k for k, v in kwargs.items() if convert(v) != v)}); written in "
                "Keras 3's form so that Keras 3 reads it as a tensor"))


def _renumber_nested_calls(inner: dict[str, Any], layers: list[dict[str, Any]], prefix: str,
                           changes: list[LegacyChange]) -> None:
    """Shift references to nested models' calls down by one where tf.keras 2 counted from 1."""
    models = {
        str(layer.get("name")): len(layer.get("inbound_nodes") or [])
        for layer in layers
        if isinstance(layer.get("config"), dict) and isinstance(layer["config"].get("layers"), list)
    }
    if not models:
        return
    refs: list[list[Any]] = []
    for layer in layers:
        for node in layer.get("inbound_nodes") or []:
            if isinstance(node, list):
                refs.extend(item for item in node if _is_ref(item))
    for key in ("input_layers", "output_layers"):
        value = inner.get(key)
        if isinstance(value, list):
            if _is_ref(value):
                refs.append(value)
            else:
                refs.extend(item for item in value if _is_ref(item))
    for name, calls in models.items():
        mine = [ref for ref in refs if ref[0] == name]
        if mine and calls and all(1 <= ref[1] <= calls for ref in mine):
            for ref in mine:
                ref[1] -= 1
            changes.append(LegacyChange(
                prefix + name, f"legacy config: calls of nested model {name!r} renumbered "
                "from 0 (tf.keras 2 counted its creation as call 0)"))


def _is_ref(item: Any) -> bool:
    return (isinstance(item, list) and len(item) >= 3 and isinstance(item[0], str)
            and isinstance(item[1], int) and not isinstance(item[1], bool))
