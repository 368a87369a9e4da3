"""Each private Keras attribute keras-cut relies on (backend/private.py) still exists: a Keras
upgrade that removes one fails here, by name, rather than somewhere deep in verify."""

from __future__ import annotations

import importlib

import pytest

from keras_cut.backend.keras import private


@pytest.fixture(scope="module")
def nested(keras):
    inner_in = keras.Input((4,), name="inner_in")
    inner = keras.Model(inner_in, keras.layers.Dense(3, name="d")(inner_in), name="inner")
    x = keras.Input((4,), name="x")
    model = keras.Model(x, inner(x), name="outer")
    seq = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="s")])
    return model, inner, seq


def test_every_listed_attribute_is_exercised():
    assert set(private.PRIVATE_ATTRIBUTES) == set(CHECKS)


def _sequential_functional(m):
    return private.own_graph(m[2]) is not m[2]


def _nodes_by_depth(m):
    return bool(private.nodes_by_depth(private.own_graph(m[0])))


def _nodes(m):
    return len(private.own_calls(private.own_graph(m[0]), m[1])) == 1


def _fill_in(m):
    graph = private.own_graph(m[0])
    node = next(n for nodes in private.nodes_by_depth(graph).values() for n in nodes
                if not n.is_input)
    args, _ = private.fill_in(node, {id(kt): "value" for kt in graph.inputs})
    return args[0] == "value"


def _history(m):
    op, node, index = private.history(m[0].outputs[0])
    return op is m[1] and index == 0 and not node.is_input


def _call_context_args(m):
    return "training" in private.call_context_args(m[1].get_layer("d"))


def _saved_state(m):
    state = private.saved_state(m[1].get_layer("d"))
    return [getattr(v, "name", None) for v in state[""].values()] == ["kernel", "bias"]


def _output_shapes(m):
    (node,) = private.own_calls(private.own_graph(m[0]), m[1])
    return private.output_shapes(node) == [(None, 3)]


def _module_attr(dotted):
    module, _, name = dotted.rpartition(".")
    return lambda m: hasattr(importlib.import_module(module), name)


CHECKS = {
    "Sequential._functional": _sequential_functional,
    "Functional._nodes_by_depth": _nodes_by_depth,
    "Functional._nodes": _nodes,
    "Operation._inbound_nodes": _nodes,
    "Node.arguments.fill_in": _fill_in,
    "Node.output_tensors": _output_shapes,
    "KerasTensor._keras_history": _history,
    "Layer._call_context_args": _call_context_args,
    "keras.src.saving.saving_lib._save_state": _saved_state,
    "keras.src.saving.saving_lib.NpzIOStore": _saved_state,
    **{name: _module_attr(name) for name in private.PRIVATE_ATTRIBUTES
       if name.startswith("keras.") and "saving_lib" not in name},
}


@pytest.mark.parametrize("name", sorted(private.PRIVATE_ATTRIBUTES))
def test_private_attribute_still_there(name, nested):
    try:
        ok = CHECKS[name](nested)
    except (AttributeError, ImportError, KeyError) as exc:
        pytest.fail(f"Keras no longer has {name} ({exc}); keras-cut uses it: "
                    f"{private.PRIVATE_ATTRIBUTES[name]}")
    assert ok, f"Keras' {name} behaves differently; keras-cut uses it: " \
               f"{private.PRIVATE_ATTRIBUTES[name]}"
