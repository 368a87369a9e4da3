"""One self-contained, interactive HTML page of a drawing (`keras-cut graph -o FILE.html`).

The page needs nothing at view time, network included: the graph's data is embedded as JSON,
laid out in the browser by dagre and panned and zoomed by svg-pan-zoom, both shipped in
`assets/vendor/` (licenses beside them) and inlined into the page. No Graphviz is needed.
A search box finds layers; clicking a layer shows its class, shape, params, config, its
neighbours, and the `keras-cut cut` commands that start or end there. `#search=TEXT` and
`#layer=NAME` in the page's address run a search or select a layer when it opens.
"""

from __future__ import annotations

import html
import json
import re
import shlex
from importlib import resources
from pathlib import PurePath
from typing import Any

from keras_cut.core.shown import bounded, shell_word, visible
from keras_cut.draw.drawing import Drawing, Node
from keras_cut.present.styles import LEGEND, STYLES

MAX_CONFIG_CHARS = 20_000  # per layer; a Normalization's statistics can be megabytes
_PLACEHOLDER = re.compile(r"@(TITLE|CSS|DATA|SVG_PAN_ZOOM|DAGRE|PAGE_JS)@")


def _asset(name: str) -> str:
    return resources.files("keras_cut.present").joinpath("assets", name).read_text(encoding="utf-8")


def to_html(drawing: Drawing) -> str:
    parts = {
        "TITLE": html.escape(visible(f"{drawing.title or 'model'} — keras-cut graph")),
        "CSS": _asset("graph_page.css"),
        # JSON inside <script>: "<" escaped so that no "</script>" can end the element early
        "DATA": json.dumps(page_data(drawing), ensure_ascii=False).replace("<", "\\u003c"),
        "SVG_PAN_ZOOM": _asset("vendor/svg-pan-zoom.min.js"),
        "DAGRE": _asset("vendor/dagre.min.js"),
        "PAGE_JS": _asset("graph_page.js"),
    }
    return _PLACEHOLDER.sub(lambda m: parts[m[1]], _asset("graph_page.html"))


def page_data(drawing: Drawing) -> dict[str, Any]:
    """What the page's script draws: nodes, edges, clusters, styles, commands."""
    cluster_ids = {context: f"c{i}" for i, context in enumerate(drawing.clusters)}
    clusters = [{"id": cluster_ids[context], "label": bounded(label),
                 "parent": cluster_ids.get(context[:-1]) if len(context) > 1 else None}
                for context, label in drawing.clusters.items()]
    sources = {e.source for e in drawing.edges}
    # `label` is the name as typed (search, commands); `shown` and `text` what is displayed:
    # every control or bidirectional character visible, and the box's text bounded
    nodes = [{"id": n.id, "label": n.label, "shown": visible(n.label), "text": bounded(n.label),
              "class_name": visible(n.class_name), "shape": n.shape,
              "params": n.params, "role": n.role,
              "cluster": cluster_ids.get(n.context) if n.context else None,
              "config": _config_text(n), "commands": _commands(drawing, n, n.id in sources)}
             for n in drawing.nodes]
    summary = f"{len(drawing.nodes)} layer calls"
    if drawing.cut:
        kept = sum(n.role in ("kept", "output") for n in drawing.nodes)
        summary += f" · this cut keeps {kept}"
    return {
        "title": visible(drawing.title or "model"),
        "model": drawing.model,
        "cut": drawing.cut,
        "summary": summary,
        "styles": {role: _style(mermaid) for role, (_, mermaid) in STYLES.items()},
        "legend": [list(item) for item in LEGEND] if drawing.cut else [],
        "clusters": clusters,
        "nodes": nodes,
        "edges": [{"source": e.source, "target": e.target, "crossing": e.crossing}
                  for e in drawing.edges],
    }


def _style(mermaid: str) -> dict[str, str]:
    """The drawing's role styles (Mermaid's `key:value,...`) for SVG attributes."""
    pairs = dict(item.split(":", 1) for item in mermaid.split(","))
    return {"fill": pairs.get("fill", "#ffffff"), "stroke": pairs.get("stroke", "#5b6b7f"),
            "width": pairs.get("stroke-width", "1.2").removesuffix("px"),
            "dash": pairs.get("stroke-dasharray", "")}


def _config_text(node: Node) -> str:
    config = dict(node.config)
    if isinstance(config.get("layers"), list):  # a nested model: its layers are drawn
        config["layers"] = f"({len(config['layers'])} layers, drawn as a cluster)"
    text = json.dumps(config, indent=1, sort_keys=True, default=str)
    if len(text) > MAX_CONFIG_CHARS:
        text = text[:MAX_CONFIG_CHARS] + f"\n… ({len(text) - MAX_CONFIG_CHARS:,} more characters)"
    return text


def _commands(drawing: Drawing, node: Node, feeds_others: bool) -> list[dict[str, str]]:
    """The `keras-cut cut` commands that end or start at this layer call."""
    if node.class_name == "InputLayer" and not node.context:
        return []
    model = drawing.model or "MODEL.keras"
    path = PurePath(model)
    suffix = path.suffix if path.suffix in (".keras", ".h5") else ".keras"
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", node.label).strip("_") or "layer"
    stem = path.with_suffix("").name or "model"
    quoted, name = shell_word(model), shell_word(node.label)
    commands = [{"what": "The model up to this layer (a feature extractor):",
                 "command": f"keras-cut cut {quoted} -o {shlex.quote(f'{stem}_to_{safe}{suffix}')}"
                            f" --output-layer {name}"}]
    if feeds_others:
        commands.append({"what": "The rest of the model, fed by this layer's output (a head):",
                         "command": f"keras-cut cut {quoted} -o "
                                    f"{shlex.quote(f'{stem}_from_{safe}{suffix}')}"
                                    f" --input-layer {name}"})
    return commands
