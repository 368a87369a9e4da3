"""What a model, a layer call and a cut cost per sample: multiply-accumulates (MACs) and the
memory of the activations (output tensors), from the layer graph alone (no TensorFlow).

Each layer call is counted (a shared layer called twice costs twice; a nested model called twice
counts its layers twice). A call whose class has no cost rule, or whose shapes are unknown,
costs `None`; totals then add up what is known and say they are a lower bound ("at least").
Activation memory is the bytes of every call's outputs, plus the model's inputs: what a forward
pass materialises if nothing is freed (the convention of torchinfo's "forward pass size").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keras_cut.core.address import CallAddress
from keras_cut.core.dtypes import dtype_bytes
from keras_cut.layers.known import layer_macs
from keras_cut.layers.macs import per_sample
from keras_cut.model.flatgraph import FlatGraph
from keras_cut.model.graph import Call, Layer, LayerGraph, Tensor

if TYPE_CHECKING:  # `inspect` needs no cut planning
    pass

def tensor_bytes(tensor: Tensor) -> int | None:
    """Bytes of one sample of a tensor; None when its shape or dtype is unknown."""
    size = per_sample(tensor.shape)
    width = dtype_bytes(tensor.dtype)
    return None if size is None or width is None else size * width


def call_bytes(call: Call) -> int | None:
    sizes = [tensor_bytes(t) for t in call.outputs]
    return None if not sizes or None in sizes else sum(sizes)  # type: ignore[arg-type]


def call_macs(graph: LayerGraph, layer: Layer, call: Call) -> int | None:
    """MACs per sample of one call of a (non-model) layer."""
    inputs = [graph.tensor(ref).shape for ref in call.inputs]
    outputs = [t.shape for t in call.outputs]
    weights = {w.name: w.shape for w in layer.weights}  # full names, and short ones too
    for w in layer.weights:
        weights.setdefault(w.name.rsplit("/", 1)[-1], w.shape)
    return layer_macs(layer.class_name, layer.config, inputs, outputs, weights)


@dataclass
class Cost:
    """Per-sample totals; `*_known` False means some part was unknown (a lower bound)."""

    macs: int = 0
    macs_known: bool = True
    activation_bytes: int = 0
    activation_known: bool = True
    largest: tuple[str, int] | None = None  # the largest single activation: (layer, bytes)
    unknown: list[str] = field(default_factory=list)  # layers (path@call) of unknown MACs

    def add_macs(self, value: int | None, label: str) -> None:
        if value is None:
            self.macs_known = False
            self.unknown.append(label)
        else:
            self.macs += value

    def add_bytes(self, value: int | None, label: str) -> None:
        if value is None:
            self.activation_known = False
            return
        self.activation_bytes += value
        if self.largest is None or value > self.largest[1]:
            self.largest = (label, value)

    def to_dict(self) -> dict[str, Any]:
        return {"macs": self.macs, "macs_complete": self.macs_known,
                "activation_bytes": self.activation_bytes,
                "activation_bytes_complete": self.activation_known,
                "largest_activation": None if self.largest is None else
                {"layer": self.largest[0], "bytes": self.largest[1]},
                "unknown_cost_layers": self.unknown}


def share(part: int, part_known: bool, whole: int, whole_known: bool) -> float | None:
    """part / whole when both are complete; a lower bound over another is no share."""
    return part / whole if whole and part_known and whole_known else None


def flat_cost(flat: FlatGraph, nodes: list[CallAddress] | None = None,
              inputs: list[tuple[str, Tensor]] | None = None) -> Cost:
    """The cost of `nodes` (default: every call of the model) fed by `inputs` (default: the
    model's inputs), each input counted once as an activation."""
    cost = Cost()
    if inputs is None:
        inputs = [(ref.layer, flat.top.tensor(ref)) for ref in flat.top.inputs]
    for label, tensor in inputs:
        cost.add_bytes(tensor_bytes(tensor), label)
    for node in flat.nodes if nodes is None else nodes:
        graph = flat.graph_of(node)
        layer = graph.by_name[node.layer]
        call = layer.calls[node.call]
        label = flat.label(node)
        cost.add_macs(call_macs(graph, layer, call), label)
        cost.add_bytes(call_bytes(call), label)
    return cost


def layer_call_costs(graph: LayerGraph, layer: Layer) -> tuple[list[int | None],
                                                              list[int | None]]:
    """(MACs, activation bytes) of each call of `layer`, a nested model's being its layers'."""
    if layer.submodel is not None:
        inner = flat_cost(FlatGraph(layer.submodel), inputs=[])
        macs = inner.macs if inner.macs_known else None
        return [macs] * len(layer.calls), [call_bytes(call) for call in layer.calls]
    if layer.is_input:
        return [0] * len(layer.calls), [call_bytes(call) for call in layer.calls]
    return ([call_macs(graph, layer, call) for call in layer.calls],
            [call_bytes(call) for call in layer.calls])
