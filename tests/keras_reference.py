"""What Keras itself says about a loaded model, for comparison with keras-cut's reader.

Written against Keras' public objects only; it shares no code with keras_cut.
"""

from __future__ import annotations

import math


def layer_facts(model) -> dict[str, dict]:
    """Per layer path: params, trainable params and output shapes per call, from Keras."""
    facts: dict[str, dict] = {}

    def visit(owner, prefix: str) -> None:
        graph = getattr(owner, "_functional", None) or owner  # a Sequential's inner graph
        keys = getattr(graph, "_nodes", None)
        for layer in owner.layers:
            path = prefix + layer.name
            calls = []
            for index, node in enumerate(layer._inbound_nodes):
                # Loading leaves extra build-time nodes; count only this model's own calls.
                if keys is not None and f"{id(layer)}_ib-{index}" not in keys:
                    continue
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
