"""The private Keras attributes keras-cut relies on, in one place, each behind one function.

Checked on Keras 3.15.1. `tests/backend/test_backend_private.py` touches each of them on a real
model and fails by name when a Keras upgrade removes or changes one.
"""

from __future__ import annotations

from typing import Any

# name -> why keras-cut needs it
PRIVATE_ATTRIBUTES: dict[str, str] = {
    "Sequential._functional": "the Functional graph a built Sequential model runs",
    "Functional._nodes_by_depth": "verify's probe walks the parent's own node graph",
    "Functional._nodes": "which of a layer's calls belong to this model (node keys)",
    "Operation._inbound_nodes": "a layer's calls, to tell them apart (NAME@N)",
    "Node.arguments.fill_in": "replays a recorded call on new tensors",
    "KerasTensor._keras_history": "which layer call produced a model's input or output tensor",
    "Layer._call_context_args": "which layers take `training` (as Functional passes it)",
    "keras.src.saving.saving_lib._save_state":
        "what Keras saves for a layer, by path inside it (verify's weight comparison)",
    "keras.src.saving.saving_lib.NpzIOStore": "an in-memory store for _save_state",
    "keras.src.backend.get_keras_mask": "a mask travels with a tensor a nested model casts",
    "keras.src.backend.set_keras_mask": "a mask travels with a tensor a nested model casts",
    "keras.src.legacy.saving.saving_options.keras_option_scope":
        "builds tf.keras 2 configs the way Keras' own .h5 loader does",
    "keras.src.legacy.saving.saving_utils.model_from_config":
        "builds tf.keras 2 configs the way Keras' own .h5 loader does",
    "keras.src.saving.serialization_lib.SafeModeScope":
        "keeps safe mode on while building a normalised tf.keras 2 config",
    "Node.output_tensors": "the shapes of each call's outputs, for a graph built from code",
    "keras.src.models.functional.Functional":
        "tells a Functional subclass (a keras_hub backbone) from a plain Functional model",
}


def own_graph(model: Any) -> Any:
    """The Functional graph a model runs (a Sequential keeps one inside)."""
    return getattr(model, "_functional", None) or model


def nodes_by_depth(graph: Any) -> dict[int, list[Any]]:
    return graph._nodes_by_depth


def own_calls(graph: Any, operation: Any) -> list[Any]:
    """The calls (nodes) of `operation` that belong to `graph`, in call order."""
    keys = graph._nodes
    return [node for i, node in enumerate(operation._inbound_nodes)
            if f"{id(operation)}_ib-{i}" in keys]


def fill_in(node: Any, known: dict[int, Any]) -> tuple[list[Any], dict[str, Any]]:
    """A node's recorded call arguments with `known` values (by id of the KerasTensor)."""
    return node.arguments.fill_in(known)


def legacy_model_from_config(config: dict[str, Any], custom_objects: dict[str, Any] | None,
                             safe_mode: bool) -> Any:
    """Build an h5-style config (no `module` keys) as Keras' own .h5 loader does."""
    from keras.src.legacy.saving import saving_options, saving_utils
    from keras.src.saving import serialization_lib

    with saving_options.keras_option_scope(use_legacy_config=True), \
            serialization_lib.SafeModeScope(safe_mode):
        return saving_utils.model_from_config(config, custom_objects=custom_objects or None)


def history(tensor: Any) -> tuple[Any, Any, int]:
    """(operation, node, output index) that produced a model's KerasTensor."""
    op, node_index, index = tensor._keras_history
    return op, op._inbound_nodes[node_index], index


def call_context_args(operation: Any) -> set[str]:
    """Call arguments Keras' Functional model passes down (`training`)."""
    return set(getattr(operation, "_call_context_args", ()))


def saved_state(layer: Any) -> dict[str, dict[str, Any]]:
    """What `model.save` writes for `layer`: {path inside the layer: {key: value}}, values as
    the layer hands them over (variables or arrays); nothing is written anywhere."""
    from keras.src.saving import saving_lib

    store = saving_lib.NpzIOStore(None, mode="w")
    saving_lib._save_state(layer, store, None, inner_path="", visited_saveables=set())
    return {("" if path == "__root__" else path): dict(entries)
            for path, entries in store.contents.items() if entries}


def copy_mask(source: Any, target: Any) -> None:
    """Give `target` the Keras mask `source` carries, if any (as Functional does on cast)."""
    from keras.src import backend

    mask = backend.get_keras_mask(source)
    if mask is not None:
        backend.set_keras_mask(target, mask)


def _functional_class() -> Any:
    from keras.src.models.functional import Functional

    return Functional


def is_functional(layer: Any) -> bool:
    """A model built with the functional API: Functional or a subclass of it."""
    return isinstance(layer, _functional_class())


def is_plain_functional(layer: Any) -> bool:
    return type(layer) is _functional_class()


def overrides_call(layer: Any) -> bool:
    """A Functional subclass whose call() is its own, not the graph's."""
    return type(layer).call is not _functional_class().call


def output_shapes(node: Any) -> list[tuple[Any, ...]]:
    """The shapes of a call's outputs (None for unknown dimensions)."""
    return [tuple(t.shape) for t in node.output_tensors]
