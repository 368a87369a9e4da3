"""The private Keras (and tf_keras) attributes the tests' own oracles use, in one place, each
behind one function: the tests' copy of `keras_cut/backend/keras/private.py`, kept apart so
that an oracle shares no code with what it checks. `tests/test_keras_reference.py` touches each
on a real model and fails by name when an upgrade removes one."""

from __future__ import annotations

from typing import Any

# name -> why a test needs it
TEST_PRIVATE_ATTRIBUTES: dict[str, str] = {
    "Sequential._functional": "the Functional graph a built Sequential model runs",
    "Functional._nodes_by_depth": "the oracle replays a model's own node graph",
    "Functional._nodes": "which of a layer's calls belong to this model (node keys)",
    "Operation._inbound_nodes": "a layer's calls, to name each (NAME@N)",
    "Node.arguments.fill_in": "replays a recorded call on computed values",
    "KerasTensor._keras_history": "which layer produced a tensor",
    "tf_keras Functional._network_nodes": "which calls belong to a tf.keras 2 model",
    "tf_keras Layer._name": "renames a nested tf.keras 2 model after it is built",
}


def own_graph(model: Any) -> Any:
    return getattr(model, "_functional", None) or model


def nodes_by_depth(graph: Any) -> dict[int, list[Any]]:
    return graph._nodes_by_depth


def is_walkable(layer: Any) -> bool:
    """A nested model whose own node graph the oracle walks into."""
    return hasattr(layer, "layers") and hasattr(own_graph(layer), "_nodes_by_depth")


def own_calls(graph: Any, layer: Any) -> list[Any]:
    """The calls of `layer` that belong to `graph` (loading leaves build-time nodes too)."""
    keys = getattr(graph, "_nodes", None)
    return [n for i, n in enumerate(layer._inbound_nodes)
            if keys is None or f"{id(layer)}_ib-{i}" in keys]


def call_count(layer: Any) -> int:
    """Every call Keras recorded for `layer` (in any model)."""
    return len(layer._inbound_nodes)


def fill_in(node: Any, known: dict[int, Any]) -> tuple[list[Any], dict[str, Any]]:
    return node.arguments.fill_in(known)


def producer(tensor: Any) -> Any:
    """The layer whose call produced `tensor`."""
    return tensor._keras_history[0]


def tf_keras_own_call_indices(owner: Any, layer: Any) -> list[int]:
    """tf.keras 2: the indices of `layer`'s calls that belong to `owner`."""
    return [i for i in range(len(layer._inbound_nodes))
            if f"{layer.name}_ib-{i}" in owner._network_nodes]


def tf_keras_rename(layer: Any, name: str) -> None:
    layer._name = name
