"""Pictures of a model and of a cut, without TensorFlow: a drawing (nodes, edges, nested-model
clusters) built from the flat graph and, optionally, a cut plan. Writing it as a picture (DOT,
Mermaid, SVG/PNG/PDF, the HTML page) is `keras_cut.present.pictures`.

One node per layer call (`NAME@N` where a layer is called several times), nested models as
clusters, collapsed to one node per call beyond `depth`. With a cut: kept, dropped, cut-point
inputs, crossing tensors and outputs each drawn distinctly, with a legend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from keras_cut.core.address import CallAddress, Context, TensorAddress
from keras_cut.core.errors import Option, UsageError
from keras_cut.cut.plan import CutPlan, ModelCall
from keras_cut.layers.shapes import format_shape
from keras_cut.model.endpoint import Role
from keras_cut.model.flatgraph import FlatGraph


class NodeRole(StrEnum):
    """How a node is drawn: its part in the cut (or `plain` without one)."""

    KEPT = "kept"
    DROPPED = "dropped"
    INPUT = "input"
    CUT_POINT = "cut_input"
    CROSSES = "crossing"
    OUTPUT = "output"
    PLAIN = "plain"


KEPT, DROPPED, INPUT, CUT_POINT, CROSSES, OUTPUT, PLAIN = (
    NodeRole.KEPT, NodeRole.DROPPED, NodeRole.INPUT, NodeRole.CUT_POINT, NodeRole.CROSSES,
    NodeRole.OUTPUT, NodeRole.PLAIN)

@dataclass
class Node:
    id: str
    label: str  # the name a user types: path, `@N` for one call of several
    class_name: str
    shape: str
    params: int
    role: NodeRole
    context: Context  # the nested-model calls around it (clusters)
    config: dict[str, Any] = field(default_factory=dict, repr=False)  # the layer's own config


@dataclass
class Edge:
    source: str
    target: str
    crossing: bool = False  # a tensor that crosses the cut (becomes an extra input)


@dataclass
class Drawing:
    title: str
    nodes: list[Node]
    edges: list[Edge]
    clusters: dict[Context, str]  # context -> label of the nested-model call
    cut: bool = False
    model: str = ""  # the model file as the user named it (for the commands a page offers)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "cut": self.cut,
                "nodes": [{k: v for k, v in vars(n).items() if k != "config"}
                          | {"context": [list(c) for c in n.context]} for n in self.nodes],
                "edges": [vars(e) for e in self.edges],
                "clusters": [{"context": [list(c) for c in context], "label": label}
                             for context, label in self.clusters.items()]}


@dataclass
class _Builder:
    flat: FlatGraph
    depth: int | None
    plan: CutPlan | None
    nodes: dict[Any, Node] = field(default_factory=dict)

    def key(self, node: CallAddress) -> tuple[Context, str, int]:
        """The drawn node of a call: itself, or the collapsed nested-model call around it."""
        if self.depth is not None and len(node.context) > self.depth:
            outer = node.context[: self.depth + 1]
            (name, call) = outer[-1]
            return (outer[:-1], name, call)
        return (node.context, node.layer, node.call)


def draw_model(model: str | Path, output_layers: list[str] | None = None,
               input_layers: list[str] | None = None, depth: int | None = None,
               pattern: str | None = None, code: str | None = None,
               unsafe: bool = False) -> Drawing:
    """The drawing of the model file at `model`; with layer names, of that cut (same names,
    same checks and errors as `cut`), without writing a model."""
    from keras_cut.cut.plan import plan_cut
    from keras_cut.model.opening import open_model

    _, graph = open_model(model, code, unsafe, "draw")
    flat = FlatGraph(graph)
    plan = plan_cut(flat, output_layers or [], input_layers or []) \
        if output_layers or input_layers else None
    drawing = build_drawing(flat, plan, depth, pattern)
    drawing.model = str(model)
    return drawing


def build_drawing(flat: FlatGraph, plan: CutPlan | None = None, depth: int | None = None,
                  pattern: str | None = None) -> Drawing:
    """The drawing of `flat` (and of `plan`'s cut, when given)."""
    if depth is not None and depth < 0:
        raise UsageError(Option.DEPTH, f" must be 0 or more (got {depth})")
    from keras_cut.model.names import compile_filter

    regex = compile_filter(pattern)
    builder = _Builder(flat, depth, plan)
    roles = _roles(flat, plan) if plan is not None else {}
    crossing = {p.parent for p in plan.inputs if p.role is Role.CROSSING} if plan else set()
    order: list[tuple[Context, str, int]] = []
    for ref in flat.top.inputs:
        order.append(((), ref.layer, 0))
    for node in flat.nodes:
        key = builder.key(node)
        if key not in order:
            order.append(key)
    nodes: dict[tuple[Context, str, int], Node] = {}
    for i, key in enumerate(order):
        context, name, call = key
        fnode = CallAddress(context, name, call)
        layer = flat.layer(fnode)
        role = _role_of(builder, fnode, roles, plan)
        nodes[key] = Node(f"n{i}", flat.label(fnode), layer.class_name, _shape(flat, fnode),
                          layer.params, role, context, layer.config)
    edges: list[Edge] = []
    seen: set[tuple[str, str]] = set()
    for step in flat.nodes:
        target = nodes[builder.key(step)]
        for t in flat.inputs_of(step):
            source = nodes.get(_producer_key(builder, t))
            if source is None or source is target or (source.id, target.id) in seen:
                continue
            seen.add((source.id, target.id))
            edges.append(Edge(source.id, target.id,
                              t in crossing and target.role in (KEPT, OUTPUT)))
    clusters: dict[Context, str] = {}
    for drawn_node in nodes.values():
        for d in range(1, len(drawn_node.context) + 1):
            context = drawn_node.context[:d]
            clusters.setdefault(context, flat.label(CallAddress(context[:-1], *context[-1])))
    drawn = list(nodes.values())
    if regex is not None:
        drawn = [n for n in drawn if regex.search(n.label) or regex.search(n.class_name)]
        if not drawn:
            raise UsageError(Option.FILTER,
                             f" {pattern!r} matches no layer (it is searched in layer "
                             "paths and class names)")
        ids = {n.id for n in drawn}
        edges = [e for e in edges if e.source in ids and e.target in ids]
        used = {c[:d] for n in drawn for c in [n.context] for d in range(1, len(c) + 1)}
        clusters = {c: label for c, label in clusters.items() if c in used}
    return Drawing(flat.top.name, drawn, edges, clusters, cut=plan is not None)


def _producer_key(builder: _Builder, t: TensorAddress) -> tuple[Context, str, int]:
    layer = builder.flat.layer(t)
    if layer.is_input and not t.context:
        return ((), t.layer, 0)
    return builder.key(t.node)


def _roles(flat: FlatGraph, plan: CutPlan) -> dict[CallAddress, NodeRole]:
    roles: dict[CallAddress, NodeRole] = {}
    for step in plan.steps:
        if isinstance(step, ModelCall):
            inner = step.context + ((step.layer, step.call),)
            for node in flat.nodes:
                if node.context[: len(inner)] == inner:
                    roles[node] = KEPT
        else:
            roles[step] = KEPT
    for p in plan.inputs:
        if p.role is Role.CUT_INPUT:
            roles[p.parent.node] = CUT_POINT
        elif p.role is Role.CROSSING:
            roles[p.parent.node] = CROSSES
        elif p.role is Role.PARENT_INPUT:
            roles[CallAddress((), p.parent.layer, 0)] = INPUT
    for p in plan.outputs:
        roles[p.parent.node] = OUTPUT
    return roles


def _role_of(builder: _Builder, node: CallAddress, roles: dict[CallAddress, NodeRole],
             plan: CutPlan | None) -> NodeRole:
    layer = builder.flat.layer(node)
    if plan is None:
        return INPUT if layer.is_input else PLAIN
    if layer.submodel is not None:  # a collapsed nested-model call: the strongest role inside
        inner = node.context + ((node.layer, node.call),)
        found = {role for n, role in roles.items() if n.context[: len(inner)] == inner}
        # kept before cut point: a cut inside it keeps most of it, it is not cut at its output
        for role in (OUTPUT, KEPT, CUT_POINT, CROSSES):
            if role in found:
                return role
        return DROPPED
    return roles.get(node, DROPPED)


def _shape(flat: FlatGraph, node: CallAddress) -> str:
    layer = flat.layer(node)
    if layer.is_input:
        shapes = [layer.calls[0].outputs[0].shape] if layer.calls and layer.calls[0].outputs \
            else [None]
    else:
        shapes = [t.shape for t in layer.calls[node.call].outputs]
    return ", ".join(format_shape(s) for s in shapes)
