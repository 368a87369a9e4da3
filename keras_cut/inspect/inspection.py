"""`inspect`: what a saved model holds, from the file alone (no TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keras_cut.core.address import TensorAddress
from keras_cut.core.errors import Option, UsageError
from keras_cut.file.reading import read_model_file
from keras_cut.layers.shapes import Shape
from keras_cut.model.classmodel import (
    ClassModelReport,
    FileHeader,
    inspect_class_model,
    is_class_model,
    needs_code_error,
)
from keras_cut.model.costs import Cost, flat_cost, layer_call_costs
from keras_cut.model.flatgraph import FlatGraph
from keras_cut.model.graph import Layer, LayerGraph
from keras_cut.model.names import compile_filter
from keras_cut.model.opening import graph_of, open_model
from keras_cut.model.safety import Finding, find_hazards


@dataclass
class TensorInfo:
    name: str
    shape: Shape | None
    dtype: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": _shape_list(self.shape), "dtype": self.dtype}


@dataclass
class LayerRow:
    name: str  # the path, as `cut` accepts it
    class_name: str
    depth: int
    output_shapes: list[list[Shape | None]]  # per call, per output tensor
    params: int
    trainable_params: int
    trainable: bool
    inbound: list[list[str]]  # per call, the tensors it takes ("conv1", "shared@1")
    is_model: bool
    macs: list[int | None] = field(default_factory=list)  # per call, per sample; None: unknown
    activation_bytes: list[int | None] = field(default_factory=list)  # per call, per sample
    runs: int = 1  # how often its model runs per sample (a nested model called twice: 2)

    @property
    def output_shape(self) -> Any:
        """Keras-style: one shape, a list for several outputs, a list per call if they differ."""
        per_call = [_one_or_list(shapes) for shapes in self.output_shapes]
        if not per_call:
            return None
        return per_call[0] if all(p == per_call[0] for p in per_call) else per_call

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "class_name": self.class_name,
            "output_shape": _jsonable(self.output_shape),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "trainable": self.trainable,
            "inbound": [ref for call in self.inbound for ref in call],
            "calls": len(self.output_shapes),
            "depth": self.depth,
            "macs": _total(self.macs, self.runs),
            "macs_per_call": self.macs,
            "activation_bytes": _total(self.activation_bytes, self.runs),
            "activation_bytes_per_call": self.activation_bytes,
            "runs": self.runs,
        }


@dataclass
class InspectReport(FileHeader):
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    layers: list[LayerRow]
    total_params: int
    trainable_params: int
    weight_bytes: int
    findings: list[Finding] = field(default_factory=list)
    cost: Cost = field(default_factory=Cost)
    built_from: Any = None  # backend.materialize.BuiltFrom: the graph was built by code

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.header_dict(),
            "layer_graph": True,  # false: a model saved as its class, read without its code
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "layers": [row.to_dict() for row in self.layers],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "weight_bytes": self.weight_bytes,
            "total_macs": self.cost.macs,
            "total_macs_complete": self.cost.macs_known,
            "activation_bytes": self.cost.activation_bytes,
            "activation_bytes_complete": self.cost.activation_known,
            "largest_activation": self.cost.to_dict()["largest_activation"],
            "unknown_cost_layers": self.cost.unknown,
            "findings": [f.to_dict() for f in self.findings],
            "built_from": self.built_from.to_dict() if self.built_from else None,
        }


@dataclass
class WeightDetail:
    name: str
    shape: tuple[int, ...]
    dtype: str
    trainable: bool
    min: float | None
    max: float | None
    mean: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__, shape=list(self.shape))


@dataclass
class LayerDetail:
    row: LayerRow
    config: dict[str, Any]
    weights: list[WeightDetail]
    findings: list[Finding]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.row.to_dict(),
            "config": self.config,
            "weights": [w.to_dict() for w in self.weights],
            "findings": [f.to_dict() for f in self.findings],
        }


def inspect_model(
    path: str | Path, depth: int | None = None, filter: str | None = None,
    code: str | None = None, unsafe: bool = False,
) -> InspectReport | ClassModelReport:
    """Describe the model at `path`: header, layers (nested to `depth`), params, findings.

    A model saved as its class (a keras_hub backbone) is described from the file alone
    (`ClassModelReport`) unless `code` builds its graph (`open_model`)."""
    model_file = read_model_file(path)
    if is_class_model(model_file) and not code:
        if filter is not None:
            raise needs_code_error(model_file, "filter the layers of")
        return inspect_class_model(model_file)
    model_file, graph = graph_of(model_file, code, unsafe)
    pattern = compile_filter(filter)
    runs = {id(graph): 1}  # how often each (nested) model runs per sample
    for _, layer, owner in graph.walk():
        if layer.submodel is not None:
            runs[id(layer.submodel)] = runs.get(id(layer.submodel), 0) + \
                runs[id(owner)] * len(layer.calls)
    rows = [
        _row(graph_of, layer, d, runs.get(id(graph_of), 1))
        for d, layer, graph_of in graph.walk(depth)
        if pattern is None or pattern.search(layer.path) or pattern.search(layer.class_name)
    ]
    if pattern is not None and not rows:
        raise UsageError(Option.FILTER,
                         f" {filter!r} matches no layer (it is searched in layer paths "
                         "and class names)")
    return InspectReport(
        file=str(model_file.path),
        format=model_file.format,
        keras_version=model_file.keras_version,
        date_saved=model_file.date_saved,
        name=graph.name,
        class_name=graph.class_name,
        inputs=[_tensor_info(graph, ref) for ref in graph.inputs],
        outputs=[_tensor_info(graph, ref) for ref in graph.outputs],
        layers=rows,
        total_params=graph.params,
        trainable_params=graph.trainable_params,
        weight_bytes=graph.weight_bytes,
        findings=find_hazards(model_file, graph),
        cost=flat_cost(FlatGraph(graph)),
        built_from=model_file.built_from,
    )


def inspect_layer(path: str | Path, spec: str, code: str | None = None,
                  unsafe: bool = False) -> LayerDetail:
    """One layer in detail: config, weights with value statistics, findings."""
    import numpy as np

    model_file, graph = open_model(path, code, unsafe, "show a layer of")
    layer, _ = graph.find(spec)
    depth, owner = next((d, g) for d, candidate, g in graph.walk() if candidate is layer)
    weights = []
    if layer.weights:
        with model_file.open_weights() as h5:
            for w in layer.weights:
                value = np.asarray(model_file.read_weight(h5, w.entry), dtype=np.float64)
                empty = value.size == 0
                weights.append(
                    WeightDetail(
                        w.name, w.shape, w.dtype, w.trainable and layer.trainable,
                        None if empty else float(value.min()),
                        None if empty else float(value.max()),
                        None if empty else float(value.mean()),
                    )
                )
    findings = [f for f in find_hazards(model_file, graph) if f.layer == layer.path]
    return LayerDetail(_row(owner, layer, depth), layer.config, weights, findings)


def _row(graph: LayerGraph, layer: Layer, depth: int, runs: int = 1) -> LayerRow:
    macs, activation = layer_call_costs(graph, layer)
    if layer.is_input and depth > 0:  # a nested model's input: the caller's tensor, not a copy
        activation = [0] * len(activation)
    return LayerRow(
        name=layer.path,
        class_name=layer.class_name,
        depth=depth,
        output_shapes=[[t.shape for t in call.outputs] for call in layer.calls],
        params=layer.params,
        trainable_params=layer.trainable_params,
        trainable=layer.trainable,
        inbound=[[ref_label(graph, ref) for ref in call.inputs] for call in layer.calls],
        is_model=layer.submodel is not None,
        macs=macs,
        activation_bytes=activation,
        runs=runs,
    )


def ref_label(graph: LayerGraph, ref: TensorAddress) -> str:
    """How a tensor is named to users: its layer's path, `@N` if that layer has several calls."""
    producer = graph.by_name[ref.layer]
    label = producer.path
    if len(producer.calls) > 1:
        label += f"@{ref.call}"
    if ref.index:
        label += f"[{ref.index}]"
    return label


def _tensor_info(graph: LayerGraph, ref: TensorAddress) -> TensorInfo:
    tensor = graph.tensor(ref)
    return TensorInfo(ref_label(graph, ref), tensor.shape, tensor.dtype)


def _total(values: list[int | None], runs: int = 1) -> int | None:
    """All calls, each time its model runs."""
    if not values or None in values:
        return None
    return runs * sum(values)  # type: ignore[arg-type]


def _one_or_list(shapes: list[Shape | None]) -> Any:
    return shapes[0] if len(shapes) == 1 else shapes


def _shape_list(shape: Shape | None) -> list[int | None] | None:
    return None if shape is None else list(shape)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
