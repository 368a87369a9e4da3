"""Run models: verify's probe of the parent's activations, and compiled inference."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import UsageError
from . import private
from .loading import keras_module


def is_model(layer: Any) -> bool:
    return hasattr(layer, "layers") and hasattr(private.own_graph(layer), "_nodes_by_depth")


def probe_model(parent: Any, wanted: list[tuple[Any, str, int, int]]) -> Any:
    """A model from the parent's inputs to the activations at each wanted tensor, given as
    (context, layer name, call, output index) with context the nested-model calls around it.

    Built by walking Keras' own node graph, nested models included, and replaying each node on
    new inputs: independent of the config replay that `cut` uses, so that a bug there cannot
    make both sides of a comparison wrong in the same way.
    """
    keras = keras_module()
    graph = private.own_graph(parent)
    inputs = [
        keras.Input(batch_shape=tuple(kt.shape), dtype=kt.dtype, name=kt.name)
        for kt in graph.inputs
    ]
    record: dict[tuple[Any, str, int], list[Any]] = {}

    def walk(owner: Any, values: list[Any], context: tuple) -> list[Any]:
        inner = private.own_graph(owner)
        known = {id(kt): v for kt, v in zip(inner.inputs, values)}
        by_depth = private.nodes_by_depth(inner)
        for depth in sorted(by_depth, reverse=True):
            for node in by_depth[depth]:
                if node.is_input:
                    continue
                op = node.operation
                args, kwargs = private.fill_in(node, known)
                call = private.own_calls(inner, op).index(node)
                if is_model(op):
                    outs = walk(op, keras.tree.flatten(args[0]), context + ((op.name, call),))
                else:
                    outs = keras.tree.flatten(op(*args, **kwargs))
                record[(context, op.name, call)] = outs
                for kt, value in zip(node.outputs, outs):
                    known[id(kt)] = value
        return [known[id(kt)] for kt in inner.outputs]

    walk(parent, inputs, ())
    outputs = []
    for context, name, call, index in wanted:
        outs = record.get((context, name, call))
        if outs is None or index >= len(outs):
            where = "/".join([n for n, _ in context] + [name])
            raise UsageError(f"the parent has no output {index} of call {call} of {where!r}")
        outputs.append(outs[index])
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs, name="keras_cut_probe")


def all_layers(model: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every layer with its path, nested models walked into."""
    for layer in model.layers:
        yield prefix + layer.name, layer
        if is_model(layer):
            yield from all_layers(layer, prefix + layer.name + "/")


def runner(model: Any) -> Any:
    """One compiled inference function for `model` (training=False), traced once for any
    batch size; twice as fast as eager calls on CPU for convolutional models."""
    import numpy as np
    import tensorflow as tf

    keras = keras_module()
    inputs = model.inputs
    signature = [tf.TensorSpec((None, *kt.shape[1:]), kt.dtype) for kt in inputs]

    @tf.function(input_signature=signature, reduce_retracing=True)
    def infer(*xs: Any) -> Any:
        return model(list(xs) if len(xs) > 1 else xs[0], training=False)

    def run_batch(batch: list[Any]) -> list[Any]:
        return [np.asarray(x) for x in keras.tree.flatten(infer(*batch))]

    return run_batch
