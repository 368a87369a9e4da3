"""The whole model as one flat graph of layer calls, nested models expanded.

A nested model called in the outer graph runs its own layers; here each of those calls gets a
context (the chain of nested-model calls it runs inside), so a cut can start or end anywhere,
at any depth. A nested model's input is the same tensor as what its caller passed in, and its
output the same tensor as its inner output layer's: `canonical` follows those aliases so that
every tensor has exactly one producing call.
"""

from __future__ import annotations

from keras_cut.core.address import CallAddress, Context, TensorAddress
from keras_cut.core.errors import LayerNameError, ModelFileError, Part
from keras_cut.model.graph import Layer, LayerGraph, parse_layer_spec
from keras_cut.model.names import Segment, format_name


class FlatGraph:
    def __init__(self, graph: LayerGraph):
        self.top = graph
        self._graphs: dict[Context, LayerGraph] = {(): graph}
        self.nodes: list[CallAddress] = []  # every real computation, producers first
        self._expand(graph, ())
        self.position = {node: i for i, node in enumerate(self.nodes)}
        self.parent_inputs = [self.canonical(self.tensor((), r)) for r in graph.inputs]
        self.parent_outputs = [self.canonical(self.tensor((), r)) for r in graph.outputs]
        self.consumers: dict[TensorAddress, list[CallAddress]] = {}
        for node in self.nodes:
            for t in self.inputs_of(node):
                self.consumers.setdefault(t, []).append(node)

    # --- structure --------------------------------------------------------------------------

    def _expand(self, graph: LayerGraph, context: Context) -> None:
        for name, call in graph.order:
            layer = graph.by_name[name]
            if layer.is_input:
                continue
            if layer.submodel is not None:
                inner = context + ((name, call),)
                self._graphs[inner] = layer.submodel
                self._expand(layer.submodel, inner)
            else:
                self.nodes.append(CallAddress(context, name, call))

    def layer(self, node: CallAddress | TensorAddress) -> Layer:
        return self._graphs[node.context].by_name[node.layer]

    def graph_of(self, node: CallAddress | TensorAddress) -> LayerGraph:
        """The (nested) model graph a node's layer belongs to."""
        return self._graphs[node.context]

    @staticmethod
    def tensor(context: Context, ref) -> TensorAddress:  # ref: graph.TensorAddress
        return TensorAddress(context, ref.layer, ref.call, ref.index)

    def canonical(self, t: TensorAddress) -> TensorAddress:
        """The one real producer of `t`: through nested-model inputs and outputs."""
        for _ in range(10_000):
            layer = self.layer(t)
            if layer.submodel is not None:  # a nested model's output: its inner output
                inner = t.context + ((t.layer, t.call),)
                t = self.tensor(inner, layer.submodel.outputs[t.index])
            elif layer.is_input and t.context:  # a nested model's input: what the caller gave
                graph = self._graphs[t.context]
                outer, (model, call) = t.context[:-1], t.context[-1]
                caller = self._graphs[outer].by_name[model].calls[call]
                names = [r.layer for r in graph.inputs]
                if t.layer not in names or names.index(t.layer) >= len(caller.inputs):
                    raise ModelFileError(
                        f"nested model {model!r} reads input {t.layer!r}, which call {call} "
                        f"does not pass it ({len(caller.inputs)} of {len(names)} inputs "
                        "given); the config is damaged"
                    )
                t = self.tensor(outer, caller.inputs[names.index(t.layer)])
            else:
                return t
        raise LayerNameError(f"tensor {t} aliases itself; the config is damaged")

    def find_tensor(self, t: TensorAddress) -> TensorAddress | None:
        """`t` made canonical, or None when the graph has no such tensor."""
        graph = self._graphs.get(t.context)
        layer = graph.by_name.get(t.layer) if graph is not None else None
        if layer is None:
            return None
        if layer.is_input:
            return self.canonical(t) if (t.call, t.index) == (0, 0) else None
        if t.call >= len(layer.calls) or t.index >= len(layer.calls[t.call].outputs):
            return None
        return self.canonical(t)

    def inputs_of(self, node: CallAddress) -> list[TensorAddress]:
        call = self.layer(node).calls[node.call]
        return [self.canonical(self.tensor(node.context, r)) for r in call.inputs]

    def outputs_of(self, node: CallAddress) -> list[TensorAddress]:
        """The tensors a call produces (a nested model's call: its inner outputs)."""
        call = self.layer(node).calls[node.call]
        return [
            self.canonical(TensorAddress(node.context, node.layer, node.call, i))
            for i in range(len(call.outputs))
        ]

    def shape_dtype(self, t: TensorAddress):
        tensor = self._graphs[t.context].tensor(self._ref(t))
        return tensor.shape, tensor.dtype

    @staticmethod
    def _ref(t: TensorAddress) -> TensorAddress:
        return t.at_top()

    # --- names ----------------------------------------------------------------------------

    def path(self, node: CallAddress | TensorAddress) -> str:
        parts: list[tuple[str, int | None]] = [(name, None) for name, _ in node.context]
        return format_name(parts + [(node.layer, None)])

    def label(self, node: CallAddress | TensorAddress) -> str:
        """The name a user types for this call: the path, `@N` where a layer has several."""
        parts = []
        context: Context = ()
        for name, call in node.context + ((node.layer, node.call),):
            layer = self._graphs[context].by_name[name]
            parts.append((name, call if len(layer.calls) > 1 else None))
            context = context + ((name, call),)
        return format_name(parts)

    def resolve(self, spec: str, option: Part) -> CallAddress:
        """The one call `spec` names ("backbone/conv1", "shared@1", "backbone@0/conv1")."""
        return self.resolve_outputs(spec, option)[0]

    def resolve_outputs(self, spec: str, option: Part) -> tuple[CallAddress, list[int]]:
        """The call `spec` names and which of its outputs: `[i]` picks one, else all."""
        name = parse_layer_spec(spec, option)
        found: list[CallAddress] = []
        self._match(self.top, (), name.segments, found)
        if not found:
            raise LayerNameError(option, f" {spec!r}: ", *self.top.why_not_found(spec),
                                 layer=spec)
        if len(found) > 1:
            choices = ", ".join(self.label(n) for n in found)
            raise LayerNameError(
                option, f" {spec!r} is ambiguous: the layer is called {len(found)} times "
                f"({choices}); name one call as NAME@N, e.g. ", option,
                f" {self.label(found[0])}", layer=spec
            )
        node = found[0]
        count = len(self.outputs_of(node))
        if name.index is None:
            return node, list(range(count))
        if name.index >= count:
            raise LayerNameError(
                option, f" {spec!r}: {self.label(node)!r} has {count} output(s), numbered from 0",
                layer=spec
            )
        return node, [name.index]

    def _match(self, graph: LayerGraph, context: Context, segments: tuple[Segment, ...],
               found: list[CallAddress]) -> None:
        """Every call `segments` can name: `NAME@N` as call N of NAME if it has one, else as the
        layer named "NAME@N" (`NAME\\@N` names that layer always)."""
        first, rest = segments[0], segments[1:]
        for name, wanted in first.readings():
            layer = graph.by_name.get(name)
            if layer is None:
                continue
            calls = [c.index for c in layer.calls if wanted is None or c.index == wanted]
            if not calls:
                continue
            for call in calls:
                if not rest:
                    found.append(CallAddress(context, name, call))
                elif layer.submodel is not None:
                    self._match(layer.submodel, context + ((name, call),), rest, found)
            return  # the first reading that names a call wins

