"""One self-contained, interactive HTML page of a drawing (`keras-cut graph -o FILE.html`).

The page needs nothing at view time, network included: the graph's data is embedded as JSON,
laid out in the browser by dagre and panned and zoomed by svg-pan-zoom, both shipped in
`assets/vendor/` (licenses beside them) and inlined into the page. No Graphviz is needed.
A search box finds layers; clicking a layer shows its class, shape, params, config, its
neighbours, and the `keras-cut cut` commands that start or end there. `#search=TEXT` and
`#layer=NAME` in the page's address run a search or select a layer when it opens.

`verify --locate --html FILE` writes the same page of the parent with the comparison laid over
it (`located_page`): each layer the artifact computes coloured by how far its tensor is from
Keras' activation, the first past tolerance outlined and selected, and each layer's row of the
table in its details.
"""

from __future__ import annotations

import html
import json
import math
import re
import shlex
from importlib import resources
from pathlib import Path, PurePath
from typing import Any

from keras_cut.core.shown import bounded, shell_word, visible
from keras_cut.draw.drawing import Drawing, Node
from keras_cut.present.styles import LEGEND, STYLES
from keras_cut.verify.locate import LayerRow, Location

MAX_CONFIG_CHARS = 20_000  # per layer; a Normalization's statistics can be megabytes
_PLACEHOLDER = re.compile(r"@(TITLE|CSS|DATA|SVG_PAN_ZOOM|DAGRE|PAGE_JS)@")


def _asset(name: str) -> str:
    return resources.files("keras_cut.present").joinpath("assets", name).read_text(encoding="utf-8")


def to_html(drawing: Drawing, location: Location | None = None) -> str:
    data = page_data(drawing)
    if location is not None:
        data.update(located_data(data, location))
    parts = {
        "TITLE": html.escape(visible(f"{drawing.title or 'model'} — keras-cut graph")),
        "CSS": _asset("graph_page.css"),
        # JSON inside <script>: "<" escaped so that no "</script>" can end the element early
        "DATA": json.dumps(data, ensure_ascii=False).replace("<", "\\u003c"),
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


# --locate's colours: agreeing green; differing from light orange (the least error of the
# differing layers) to red (the most), on a log scale; the first past tolerance outlined
AGREES, DIFFERS_LOW, DIFFERS_HIGH, FIRST = "#c8e6c9", (0xff, 0xe0, 0xb2), (0xe5, 0x39, 0x35), \
    "#b71c1c"
LOCATE_STYLES = {
    "agrees": {"fill": AGREES, "stroke": "#2e7d32", "width": "1.2", "dash": ""},
    "differs": {"fill": "#ef9a9a", "stroke": "#c62828", "width": "1.6", "dash": ""},
    "first": {"fill": "#fbe9e7", "stroke": FIRST, "width": "4", "dash": ""},  # outlined
    "unmatched": {"fill": "#eceff1", "stroke": "#78909c", "width": "1.2", "dash": "4 3"},
    "outside": {"fill": "#ffffff", "stroke": "#bdbdbd", "width": "1", "dash": "2 3"},
}
LOCATE_LEGEND = [("agrees", "agrees with Keras"),
                 ("differs", "differs (darker: larger error)"),
                 ("first", "first past tolerance (outlined)"),
                 ("unmatched", "no tensor of its own in the artifact"),
                 ("outside", "not in the artifact")]


def located_data(data: dict[str, Any], location: Location) -> dict[str, Any]:
    """The page's data with `location` laid over it: each node's `overlay` (its status, fill
    and rows for the details panel), the legend, a summary, and the node to open on."""
    rows = {row.layer: row for row in location.rows}
    group = {member: row for row in location.rows for member in row.fused + row.unseen}
    unmatched = set(location.unmatched)
    errors = [row.max_abs_error for row in location.rows
              if not row.passed and math.isfinite(row.max_abs_error) and row.max_abs_error > 0]
    span = (math.log10(min(errors)), math.log10(max(errors))) if errors else (0.0, 0.0)
    first = location.first
    focus = None
    nodes = []
    for node in data["nodes"]:
        label = node["label"]
        row = rows.get(label) or group.get(label)
        if row is not None:
            status = "agrees" if row.passed else "first" if row is first else "differs"
            overlay = {"status": status, "fill": _fill(row, span),
                       "rows": _row_lines(row, label)}
            if row is first and label == row.layer:
                focus = node["id"]
        else:
            status = "unmatched" if label in unmatched else "outside"
            overlay = {"status": status, "fill": LOCATE_STYLES[status]["fill"],
                       "rows": [["artifact", "no tensor of its own (not compared)"
                                 if status == "unmatched" else "not part of the artifact"]]}
        nodes.append({**node, "overlay": overlay})
    summary = f"{len(location.rows)} layers compared with the artifact · " + (
        f"first past tolerance: {visible(first.layer)} ({visible(first.class_name)})"
        + (f", then the error {location.trend}" if location.trend else "")
        if first else "every compared layer agrees")
    return {"nodes": nodes, "summary": summary, "focus": focus,
            "styles": {**data["styles"], **LOCATE_STYLES},
            "legend": [list(item) for item in LOCATE_LEGEND]}


def _fill(row: LayerRow, span: tuple[float, float]) -> str:
    if row.passed:
        return AGREES
    low, high = span
    error = row.max_abs_error
    t = 1.0 if not math.isfinite(error) else 0.0 if error <= 0 or high <= low else \
        min(1.0, max(0.0, (math.log10(error) - low) / (high - low)))
    return "#" + "".join(f"{round(a + (b - a) * t):02x}"
                         for a, b in zip(DIFFERS_LOW, DIFFERS_HIGH, strict=True))


def _row_lines(row: LayerRow, label: str) -> list[list[str]]:
    """The layer's row of the --locate table, as label/value pairs for the details panel."""
    lines = [["verdict", "agrees" if row.passed else "differs"]]
    if label != row.layer:
        lines.append(["compared as part of", visible(row.layer)])
    lines += [["artifact tensor", visible(row.tensor)],
              ["max abs error", f"{row.max_abs_error:.3g}"],
              ["mean abs error", f"{row.mean_abs_error:.3g}"],
              ["cosine", "–" if row.cosine is None else f"{row.cosine:.6f}"],
              ["SNR", "∞ (no error)" if row.snr_db is None else f"{row.snr_db:.1f} dB"]]
    if row.layout:
        lines.append(["layout", f"read from {row.layout}"])
    if row.fused:
        lines.append(["fused with", ", ".join(visible(f) for f in row.fused)])
    if row.unseen:
        lines.append(["seen through", ", ".join(visible(f) for f in row.unseen)])
    return lines


def write_located_page(parent: str | Path, location: Location, output: str | Path,
                       code: str | None = None, unsafe: bool = False) -> None:
    """The parent's graph page (every nested model drawn open, so that every layer the
    comparison names has its node) with `location` laid over it, written atomically. `code`
    and `unsafe` as for `draw_model` (a keras_hub parent is drawn by building it)."""
    from keras_cut.core.writing import atomic_output
    from keras_cut.draw.drawing import draw_model

    drawing = draw_model(parent, code=code, unsafe=unsafe)
    with atomic_output(Path(output)) as pending:
        pending.path.write_text(to_html(drawing, location), encoding="utf-8")
