"""What Keras itself says about a loaded model, for comparison with keras-cut's reader.

It shares no code with keras_cut. The private Keras attributes it needs go through
`tests/keras_private.py`; `tests/test_keras_reference.py` holds the replay in `activations` to
Keras' public feature-extraction recipe wherever that recipe applies.
"""

from __future__ import annotations

import math

from tests.keras_private import fill_in, is_walkable, nodes_by_depth, own_calls, own_graph


def layer_facts(model) -> dict[str, dict]:
    """Per layer path: params, trainable params and output shapes per call, from Keras."""
    facts: dict[str, dict] = {}

    def visit(owner, prefix: str) -> None:
        graph = own_graph(owner)  # a Sequential's inner graph
        for layer in owner.layers:
            path = prefix + layer.name
            calls = []
            # Loading leaves extra build-time nodes; count only this model's own calls.
            for node in own_calls(graph, layer):
                outputs = node.outputs if isinstance(node.outputs, (list, tuple)) else [
                    node.outputs
                ]
                calls.append([tuple(t.shape) for t in outputs])
            facts[path] = {
                "params": layer.count_params() if layer.built else 0,
                "trainable_params": sum(math.prod(w.shape) for w in layer.trainable_weights),
                "output_shapes": calls,
                "class_name": layer.__class__.__name__,
            }
            if hasattr(layer, "layers"):
                visit(layer, path + "/")

    visit(model, "")
    return facts


def totals(model) -> tuple[int, int]:
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    return model.count_params(), trainable


def activations(model, inputs: list) -> dict[tuple[str, int], list]:
    """Every layer call's outputs, by (layer path, call index), computed eagerly by walking
    Keras' own node graph (nested models are walked into, not called whole)."""
    import numpy as np
    from keras import tree

    record: dict[tuple[str, int], list] = {}

    def run(owner, values: list, prefix: str) -> list:
        graph = own_graph(owner)
        known = {id(kt): v for kt, v in zip(graph.inputs, values, strict=True)}
        by_depth = nodes_by_depth(graph)
        for depth in sorted(by_depth, reverse=True):
            for node in by_depth[depth]:
                op = node.operation
                if node.is_input:
                    continue
                args, kwargs = fill_in(node, known)
                path = prefix + op.name
                if is_walkable(op):
                    outs = run(op, tree.flatten(args[0]), path + "/")
                else:
                    outs = tree.flatten(op(*args, **kwargs))
                index = own_calls(graph, op).index(node)
                record[(path, index)] = [np.asarray(o) for o in outs]
                for kt, value in zip(node.outputs, outs, strict=True):
                    known[id(kt)] = value
        return [known[id(kt)] for kt in graph.outputs]

    outs = run(model, list(inputs), "")
    record[("", 0)] = [np.asarray(o) for o in outs]
    return record


def parse_source(label: str) -> tuple[str, int, int]:
    """"backbone/conv@1[0]" -> ("backbone/conv", 1, 0)."""
    index = 0
    if label.endswith("]"):
        label, _, rest = label.rpartition("[")
        index = int(rest[:-1])
    parts, call = [], 0
    for seg in label.split("/"):
        name, sep, number = seg.rpartition("@")
        if sep and number.isdigit():
            parts.append(name)
            call = int(number)
        else:
            parts.append(seg)
            call = 0
    return "/".join(parts), call, index


def random_inputs(model, batch: int, seed: int) -> list:
    """Seeded data for each model input: floats in [-1, 1], integers in [0, 1000)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    data = []
    for kt in model.inputs:
        shape = (batch,) + tuple(d for d in kt.shape[1:])
        if "int" in str(kt.dtype):
            data.append(rng.integers(0, 1000, size=shape).astype(kt.dtype))
        else:
            data.append(rng.uniform(-1, 1, size=shape).astype("float32"))
    return data
