"""Run loaded models for verify: the parent by replaying Keras' own node graph (to read the
activation of any layer call, at any depth), the submodel through Keras' own call.

Tensors are named the way keras-cut's graph names them (`TensorAddress`: context, layer name,
call, output index), with context the chain of nested-model calls around the layer and calls
counted among the model's own calls of that layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from keras_cut.backend.keras import private
from keras_cut.backend.keras.loading import keras_module
from keras_cut.core.address import Context, TensorAddress

Key = TensorAddress


def is_model(layer: Any) -> bool:
    return hasattr(layer, "layers") and hasattr(private.own_graph(layer), "_nodes_by_depth")


def input_names(model: Any) -> list[str]:
    """The input layers' names, in the order Keras flattens the model's inputs."""
    return [private.history(kt)[0].name for kt in model.inputs]


def walk(model: Any, feed: dict[str, Any], training: bool = False,
         until: set[Key] | None = None) -> dict[Key, Any]:
    """Every layer call's outputs (and every input's value) when `model` runs on `feed`
    (input layer name -> tensor), nested models walked into: the same node-by-node replay
    Keras' Functional model performs, made visible. With `until`, the walk stops once those
    tensors are recorded (what comes after them is never traced)."""
    keras = keras_module()
    record: dict[Key, Any] = {}
    remaining = set(until) if until is not None else None

    def done() -> bool:
        return remaining is not None and not remaining

    def run(owner: Any, values: dict[int, Any], context: Context) -> list[Any] | None:
        graph = private.own_graph(owner)
        known = dict(values)
        by_depth = private.nodes_by_depth(graph)
        for depth in sorted(by_depth, reverse=True):
            if done():
                return None
            for node in by_depth[depth]:
                op = node.operation
                if node.is_input:
                    for i, kt in enumerate(node.outputs):
                        if id(kt) in known:
                            keep(TensorAddress(context, op.name, 0, i), known[id(kt)])
                    continue
                args, kwargs = private.fill_in(node, known)
                call = private.own_calls(graph, op).index(node)
                if is_model(op):
                    inner = private.own_graph(op)
                    flat = keras.tree.flatten(args[0]) if len(args) == 1 else \
                        keras.tree.flatten(list(args))
                    given = {id(kt): _as_input(keras, value, kt)
                             for kt, value in zip(inner.inputs, flat, strict=True)}
                    outs = run(op, given, context + ((op.name, call),))
                    if outs is None:  # stopped inside
                        return None
                else:
                    if "training" in private.call_context_args(op):
                        kwargs["training"] = training
                    outs = keras.tree.flatten(op(*args, **kwargs))
                for i, (kt, value) in enumerate(zip(node.outputs, outs, strict=True)):
                    known[id(kt)] = value
                    keep(TensorAddress(context, op.name, call, i), value)
        return [known[id(kt)] for kt in graph.outputs]

    def keep(key: Key, value: Any) -> None:
        record[key] = value
        if remaining is not None:
            remaining.discard(key)

    top = private.own_graph(model)
    names = input_names(top)
    run(model, {id(kt): keras.ops.convert_to_tensor(feed[name])
                for kt, name in zip(top.inputs, names, strict=True)}, ())
    return record


def _as_input(keras: Any, value: Any, kt: Any) -> Any:
    """What a nested Functional model does to a value it is called on: convert to its input's
    dtype (keeping the mask)."""
    if str(value.dtype) == str(kt.dtype):
        return value
    converted = keras.ops.cast(value, kt.dtype)
    private.copy_mask(value, converted)
    return converted


def parent_function(model: Any, wanted: list[Key]) -> Any:
    """A compiled function: {input name: batch} -> the activations at `wanted`, in order.

    Raises a bug (not a user error) when the loaded model lacks a tensor keras-cut's own
    graph reader said it has: the two readings of the file disagree."""
    import numpy as np
    import tensorflow as tf

    top = private.own_graph(model)
    names = input_names(top)
    signature = {name: tf.TensorSpec((None, *kt.shape[1:]), kt.dtype)
                 for name, kt in zip(names, top.inputs, strict=True)}

    @tf.function(input_signature=[signature], reduce_retracing=True, autograph=False)
    def probe(feed: dict[str, Any]) -> list[Any]:
        record = walk(model, feed, until=set(wanted))
        missing = [key for key in wanted if key not in record]
        if missing:
            raise AssertionError(f"the loaded parent has no tensor {missing[0]}; keras-cut's "
                                 "reading of the file and Keras' disagree")
        return [record[key] for key in wanted]

    def run(feed: dict[str, Any]) -> list[Any]:
        return [np.asarray(x) for x in probe({name: feed[name] for name in names})]

    _trace_now(probe)

    return run


def _trace_now(function: Any) -> None:
    """Trace a function before its first batch (while verify's second process works on the
    parent). What tracing refuses (a layer name TensorFlow cannot take as a scope) is raised
    again by the first call, where verify turns it into a one-line error."""
    try:
        function.get_concrete_function()
    except Exception:  # noqa: BLE001 - raised again, and reported, by the first call
        return


def model_function(model: Any) -> tuple[Any, list[Key]]:
    """A compiled `model(inputs, training=False)`, fed by input name and packed into the
    input structure Keras expects (list, dict, nested); returns the flat outputs, and for each
    output the tensor it is (top-level layer name, call, output index)."""
    import numpy as np
    import tensorflow as tf

    keras = keras_module()
    graph = private.own_graph(model)
    names = input_names(model)
    specs = [tf.TensorSpec((None, *kt.shape[1:]), kt.dtype) for kt in model.inputs]
    structure = graph.input  # a Sequential's own `input` is its inner Functional's

    @tf.function(input_signature=[specs], reduce_retracing=True, autograph=False)
    def infer(flat: list[Any]) -> Any:
        return keras.tree.flatten(model(keras.tree.pack_sequence_as(structure, flat),
                                        training=False))

    def run(feed: dict[str, Any]) -> list[Any]:
        return [np.asarray(x) for x in infer([feed[name] for name in names])]

    _trace_now(infer)

    keys: list[Key] = []
    for kt in model.outputs:
        op, node, index = private.history(kt)
        call = 0 if node.is_input else private.own_calls(graph, op).index(node)
        keys.append(TensorAddress((), op.name, call, index))
    return run, keys


def all_layers(model: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every layer with its path, nested models walked into."""
    for layer in model.layers:
        yield prefix + layer.name, layer
        if is_model(layer):
            yield from all_layers(layer, prefix + layer.name + "/")


def operation_count(model: Any) -> int | None:
    """How many operations (layers, Keras operations, inputs) a loaded Functional model has;
    None for a model that does not list them."""
    operations = getattr(model, "operations", None)
    return len(operations) if isinstance(operations, list) else None


def weight_state(layer: Any) -> dict[str, tuple[str, Any]]:
    """Everything Keras saves for `layer`, keyed by where it saves it inside the layer
    (`vars/0`, `query_dense/vars/1`, `backward_layer/cell/vars/0`: the path inside the layer,
    then the position), with a label for people (the variable's name in place of the position
    where it has one, `#i` added where a name repeats) and the array. Two layers hold the same
    weights exactly when the arrays at the same keys agree; names are not compared (Keras
    generates them anew for unnamed weights on each load)."""
    import numpy as np

    state = {}
    for path, entries in private.saved_state(layer).items():
        names = [getattr(value, "name", None) or key for key, value in entries.items()]
        for (key, value), name in zip(entries.items(), names, strict=True):
            leaf = name if names.count(name) == 1 else f"{name}#{key}"
            where = "/".join(p for p in (path, "vars", key) if p)
            state[where] = ("/".join(p for p in (path, leaf) if p), np.asarray(value))
    return state
