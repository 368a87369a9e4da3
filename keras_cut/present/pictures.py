"""A drawing as a file: Graphviz DOT, a Mermaid flowchart, the interactive HTML page, or
SVG/PNG/PDF rendered by Graphviz's `dot` (which must be installed for those three)."""

from __future__ import annotations

import re
from pathlib import Path

from keras_cut.core.address import Context
from keras_cut.core.errors import UsageError
from keras_cut.core.shown import bounded, visible
from keras_cut.draw.drawing import Drawing, Node
from keras_cut.present.htmlpage import to_html
from keras_cut.present.styles import LEGEND, STYLES

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

TEXT_FORMATS = {".dot": to_dot, ".gv": to_dot, ".mmd": to_mermaid, ".html": to_html}
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
    from keras_cut.core.writing import atomic_output

    data = picture_bytes(drawing, output.suffix)
    with atomic_output(output) as pending:
        pending.path.write_bytes(data)
