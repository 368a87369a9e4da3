"""Pictures of a model and of a cut, without TensorFlow: a drawing (nodes, edges, nested-model
clusters) built from the flat graph and, optionally, a cut plan; written as Graphviz DOT or a
Mermaid flowchart. Rendering DOT to SVG/PNG/PDF needs Graphviz (`render`).

One node per layer call (`NAME@N` where a layer is called several times), nested models as
clusters, collapsed to one node per call beyond `depth`. With a cut: kept, dropped, cut-point
inputs, crossing tensors and outputs each drawn distinctly, with a legend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cutplan import CROSSING, CUT_INPUT, PARENT_INPUT, CutPlan, ModelCall
from .errors import UsageError
from .flatgraph import Context, FlatGraph, FlatNode, FlatTensor
from .shapes import format_shape
from .shown import bounded, visible

KEPT, DROPPED, INPUT, CUT_POINT, CROSSES, OUTPUT, PLAIN = (
    "kept", "dropped", "input", "cut_input", "crossing", "output", "plain")

# role -> (DOT attributes, Mermaid class style)
STYLES = {
    PLAIN: ('style="rounded,filled", fillcolor="#f5f7fa", color="#5b6b7f"',
            "fill:#f5f7fa,stroke:#5b6b7f"),
    INPUT: ('style="rounded,filled", fillcolor="#e3ecf7", color="#3465a4"',
            "fill:#e3ecf7,stroke:#3465a4"),
    KEPT: ('style="rounded,filled", fillcolor="#dff3e0", color="#2e7d32"',
           "fill:#dff3e0,stroke:#2e7d32"),
    DROPPED: ('style="rounded,dashed", color="#9e9e9e", fontcolor="#9e9e9e"',
              "fill:#ffffff,stroke:#9e9e9e,stroke-dasharray:4 3,color:#9e9e9e"),
    CUT_POINT: ('style="rounded,filled,bold", fillcolor="#ffe0b2", color="#e65100"',
                "fill:#ffe0b2,stroke:#e65100,stroke-width:3px"),
    CROSSES: ('style="rounded,filled,bold", fillcolor="#fce4ec", color="#c2185b"',
              "fill:#fce4ec,stroke:#c2185b,stroke-width:3px"),
    OUTPUT: ('style="rounded,filled,bold", fillcolor="#dff3e0", color="#1565c0", penwidth=3',
             "fill:#dff3e0,stroke:#1565c0,stroke-width:3px"),
}
LEGEND = [(KEPT, "kept"), (DROPPED, "dropped"), (CUT_POINT, "cut point (new input)"),
          (CROSSES, "crosses the cut (extra input)"), (OUTPUT, "output of the cut")]


@dataclass
class Node:
    id: str
    label: str  # the name a user types: path, `@N` for one call of several
    class_name: str
    shape: str
    params: int
    role: str
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

    def key(self, node: FlatNode) -> tuple[Context, str, int]:
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
    from .cutplan import plan_cut
    from .inspection import open_model

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
        raise UsageError(f"--depth must be 0 or more (got {depth})")
    from .inspection import compile_filter

    regex = compile_filter(pattern)
    builder = _Builder(flat, depth, plan)
    roles = _roles(flat, plan) if plan is not None else {}
    crossing = {p.tensor for p in plan.inputs if p.kind == CROSSING} if plan else set()
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
        fnode = FlatNode(context, name, call)
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
            clusters.setdefault(context, flat.label(FlatNode(context[:-1], *context[-1])))
    drawn = list(nodes.values())
    if regex is not None:
        drawn = [n for n in drawn if regex.search(n.label) or regex.search(n.class_name)]
        if not drawn:
            raise UsageError(f"--filter {pattern!r} matches no layer (it is searched in layer "
                             "paths and class names)")
        ids = {n.id for n in drawn}
        edges = [e for e in edges if e.source in ids and e.target in ids]
        used = {c[:d] for n in drawn for c in [n.context] for d in range(1, len(c) + 1)}
        clusters = {c: label for c, label in clusters.items() if c in used}
    return Drawing(flat.top.name, drawn, edges, clusters, cut=plan is not None)


def _producer_key(builder: _Builder, t: FlatTensor) -> tuple[Context, str, int]:
    layer = builder.flat.layer(t)
    if layer.is_input and not t.context:
        return ((), t.layer, 0)
    return builder.key(t.node)


def _roles(flat: FlatGraph, plan: CutPlan) -> dict[FlatNode, str]:
    roles: dict[FlatNode, str] = {}
    for step in plan.steps:
        if isinstance(step, ModelCall):
            inner = step.context + ((step.layer, step.call),)
            for node in flat.nodes:
                if node.context[: len(inner)] == inner:
                    roles[node] = KEPT
        else:
            roles[step] = KEPT
    for p in plan.inputs:
        if p.kind == CUT_INPUT:
            roles[p.tensor.node] = CUT_POINT
        elif p.kind == CROSSING:
            roles[p.tensor.node] = CROSSES
        elif p.kind == PARENT_INPUT:
            roles[FlatNode((), p.tensor.layer, 0)] = INPUT
    for p in plan.outputs:
        roles[p.tensor.node] = OUTPUT
    return roles


def _role_of(builder: _Builder, node: FlatNode, roles: dict[FlatNode, str],
             plan: CutPlan | None) -> str:
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


def _shape(flat: FlatGraph, node: FlatNode) -> str:
    layer = flat.layer(node)
    if layer.is_input:
        shapes = [layer.calls[0].outputs[0].shape] if layer.calls and layer.calls[0].outputs \
            else [None]
    else:
        shapes = [t.shape for t in layer.calls[node.call].outputs]
    return ", ".join(format_shape(s) for s in shapes)


# --- DOT -------------------------------------------------------------------------------------


def to_dot(drawing: Drawing) -> str:
    lines = [f"digraph {_dot_id(drawing.title)} {{",
             '  graph [rankdir=TB, nodesep=0.25, ranksep=0.35, fontname="Helvetica"];',
             '  node [shape=box, fontname="Helvetica", fontsize=10, margin="0.12,0.05"];',
             '  edge [color="#5b6b7f", arrowsize=0.6];']
    by_context: dict[Context, list[Node]] = {}
    for node in drawing.nodes:
        by_context.setdefault(node.context, []).append(node)

    def emit(context: Context, indent: str) -> None:
        for node in by_context.get(context, []):
            lines.append(f"{indent}{node.id} [label={_dot_label(node)}, "
                         f"tooltip={_dot_str(visible(node.label))}, {STYLES[node.role][0]}];")
        children = [c for c in drawing.clusters if len(c) == len(context) + 1
                    and c[: len(context)] == context]
        for i, child in enumerate(children):
            cid = "cluster_" + "_".join(re.sub(r"\W", "_", f"{n}_{c}") for n, c in child)
            lines.append(f"{indent}subgraph {cid}_{i} {{")
            lines.append(f'{indent}  label={_dot_str(bounded(drawing.clusters[child]))}; '
                         'style="rounded,'
                         f'dashed"; color="#8a96a8"; fontsize=11;')
            emit(child, indent + "  ")
            lines.append(f"{indent}}}")

    emit((), "  ")
    for edge in drawing.edges:
        style = ' [color="#c2185b", penwidth=2.5]' if edge.crossing else ""
        lines.append(f"  {edge.source} -> {edge.target}{style};")
    if drawing.cut:
        lines.append("  subgraph cluster_legend {")
        lines.append('    label="Legend"; style="rounded"; color="#8a96a8"; fontsize=11;')
        for i, (role, text) in enumerate(LEGEND):
            lines.append(f"    legend_{i} [label={_dot_str(text)}, {STYLES[role][0]}];")
        lines.append("    " + " -> ".join(f"legend_{i}" for i in range(len(LEGEND)))
                     + " [style=invis];")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_label(node: Node) -> str:
    """What a box shows: names from the file made visible and bounded (`shown`)."""
    params = f"\n{node.params:,} params" if node.params else ""
    return _dot_str(f"{bounded(node.label)}\n{bounded(node.class_name)}\n{node.shape}{params}")


def _dot_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot_id(text: str) -> str:
    return _dot_str(visible(text or "model"))


# --- Mermaid ---------------------------------------------------------------------------------


def to_mermaid(drawing: Drawing) -> str:
    lines = ["flowchart TD"]
    by_context: dict[Context, list[Node]] = {}
    for node in drawing.nodes:
        by_context.setdefault(node.context, []).append(node)

    def emit(context: Context, indent: str) -> None:
        for node in by_context.get(context, []):
            lines.append(f'{indent}{node.id}["{_mmd_label(node)}"]:::{node.role}')
        children = [c for c in drawing.clusters if len(c) == len(context) + 1
                    and c[: len(context)] == context]
        for i, child in enumerate(children):
            sid = "c" + "_".join(re.sub(r"\W", "_", f"{n}_{c}") for n, c in child) + f"_{i}"
            lines.append(f'{indent}subgraph {sid}["{_mmd_text(bounded(drawing.clusters[child]))}"]')
            emit(child, indent + "  ")
            lines.append(f"{indent}end")

    emit((), "  ")
    for i, edge in enumerate(drawing.edges):
        lines.append(f"  {edge.source} --> {edge.target}")
        if edge.crossing:
            lines.append(f"  linkStyle {i} stroke:#c2185b,stroke-width:3px")
    for role, (_, style) in STYLES.items():
        lines.append(f"  classDef {role} {style}")
    return "\n".join(lines) + "\n"


def _mmd_text(text: str) -> str:
    """Mermaid labels: quotes and markup characters as HTML entities."""
    return (text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
            .replace(">", "&gt;"))


def _mmd_label(node: Node) -> str:
    params = f"<br/>{node.params:,} params" if node.params else ""
    return (f"{_mmd_text(bounded(node.label))}<br/>{_mmd_text(bounded(node.class_name))}<br/>"
            f"{_mmd_text(node.shape)}{params}")


# --- files -----------------------------------------------------------------------------------

def _to_html(drawing: Drawing) -> str:
    from .htmlpage import to_html

    return to_html(drawing)


TEXT_FORMATS = {".dot": to_dot, ".gv": to_dot, ".mmd": to_mermaid, ".html": _to_html}
RENDERED_FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}
GRAPH_FORMATS = {s: s[1:] for s in (*TEXT_FORMATS, *RENDERED_FORMATS)}


def picture_bytes(drawing: Drawing, suffix: str) -> bytes:
    """The file content for `suffix`; rendered formats run Graphviz's `dot`."""
    suffix = suffix.lower()
    if suffix in TEXT_FORMATS:
        return TEXT_FORMATS[suffix](drawing).encode()
    if suffix not in RENDERED_FORMATS:
        raise UsageError(f"cannot draw {suffix or 'a file without extension'}: name the picture "
                         f"{', '.join(GRAPH_FORMATS)}")
    import graphviz

    try:
        return graphviz.Source(to_dot(drawing)).pipe(format=RENDERED_FORMATS[suffix])
    except graphviz.ExecutableNotFound as exc:
        raise UsageError(
            f"{suffix} pictures need Graphviz's `dot` program, which is not installed "
            "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz); "
            ".dot, .mmd and .html need nothing"
        ) from exc
    except graphviz.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode(errors="replace").strip()[:300]
        raise UsageError(f"Graphviz failed to draw the graph: {detail}") from exc


def write_picture(drawing: Drawing, output: Path) -> None:
    """Write atomically (the caller has checked the output path)."""
    from .writing import atomic_output

    data = picture_bytes(drawing, output.suffix)
    with atomic_output(output) as pending:
        pending.path.write_bytes(data)
