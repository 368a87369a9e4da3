"""`inspect` for people: the header, the layer table (chosen columns), one layer's detail, a
class-saved model's tree, the findings."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.text import Text

from keras_cut.core.errors import UsageError
from keras_cut.core.shown import name as shown_name
from keras_cut.inspect.inspection import InspectReport, LayerDetail, LayerRow
from keras_cut.layers.shapes import format_shape
from keras_cut.model.classmodel import ClassModelReport
from keras_cut.model.safety import BROKEN, UNLOADABLE, UNSAFE, Finding, FindingKind
from keras_cut.present.tables import (
    Grid,
    cost_lines,
    format_bytes,
    format_count,
    header_grid,
    one_shape,
)

SEVERITY_STYLE = {UNSAFE: "bold red", BROKEN: "bold red", UNLOADABLE: "yellow",
                  "warning": "yellow"}


def render_inspect(report: InspectReport, console: Console,
                   columns: list[str] | None = None) -> None:
    rows = _file_rows(report)
    built = report.built_from
    rows.append(("Model", f"{shown_name(report.name)} "
                          f"({built.class_name if built else report.class_name})"))
    for label, tensors in (("Inputs", report.inputs), ("Outputs", report.outputs)):
        rows.append((label, "\n".join(f"{shown_name(t.name)}: {format_shape(t.shape)} "
                                      f"{t.dtype or '?'}"
                                      for t in tensors)))
    if report.built_from is not None:
        built = report.built_from
        rows.append(("Layer graph", f"built by running {built.code} (--custom-objects): "
                     f"{built.registered_name or built.class_name} read as a Functional model "
                     "of the same layers"))
    header_grid(rows, console)
    console.print()
    layer_table(report.layers, columns).print(console)
    console.print(
        f"Total params: {report.total_params:,} ({format_bytes(report.weight_bytes)})\n"
        f"Trainable params: {report.trainable_params:,}\n"
        f"Non-trainable params: {report.non_trainable_params:,}"
    )
    console.print(cost_lines(report.cost), markup=False, soft_wrap=True)
    render_findings(report.findings, console)


def _file_rows(report: Any) -> list[tuple[str, str]]:
    rows = [("File", report.file),
            ("Format", report.format + (" (legacy HDF5)" if report.format == "h5" else "")),
            ("Keras version", report.keras_version or "not recorded")]
    if report.date_saved:
        rows.append(("Saved", report.date_saved))
    return rows


def render_class_model(report: ClassModelReport, console: Console,
                       depth: int | None = None) -> None:
    """A model saved as its class, from the file alone: what it is, its constructor
    arguments, its weights tree (groups nested to `depth`), what loading needs."""
    from rich.tree import Tree

    rows = _file_rows(report)
    rows.append(("Model", f"{shown_name(report.name)} ({report.class_name})"))
    if report.registered_name:
        rows.append(("Registered as", report.registered_name))
    rows.append(("Module", report.module or "not recorded"))
    rows.append(("Layer graph", "not in the file: it exists only when "
                 f"{report.package or 'the class'}'s code builds the model"))
    header_grid(rows, console)
    console.print()
    config = Tree(Text("Config (constructor arguments)", style="bold"))
    for key, value in report.config.items():
        _config_node(config, str(key), value)
    console.print(config)
    console.print()
    weights = Tree(Text(f"Weights ({len(_arrays(report.weights))} arrays)", style="bold"))
    for group in report.weights.groups:
        _group_node(weights, group, depth, 0)
    for array in report.weights.arrays:
        weights.add(_array_text(array))
    console.print(weights)
    console.print(
        f"Total params: {report.total_params:,} ({format_bytes(report.weight_bytes)})")
    render_findings(report.findings, console)


def _config_node(tree: Any, key: str, value: Any) -> None:
    if isinstance(value, dict) and isinstance(value.get("class_name"), str) and \
            isinstance(value.get("config"), dict):  # a serialized object
        inner = value["config"]
        label = f"{key}: {value['class_name']}"
        registered = value.get("registered_name")
        if isinstance(registered, str) and ">" in registered:
            label += f" ({registered})"
        if set(inner) <= {"name"}:
            tree.add(Text(label + (f" {inner['name']}" if "name" in inner else "")))
            return
        branch = tree.add(Text(label))
        for k, v in inner.items():
            _config_node(branch, str(k), v)
    elif isinstance(value, dict) and value:
        branch = tree.add(Text(key))
        for k, v in value.items():
            _config_node(branch, str(k), v)
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        branch = tree.add(Text(key))
        for i, v in enumerate(value):
            _config_node(branch, f"[{i}]", v)
    else:
        tree.add(Text(f"{key}: {json.dumps(value)}"))


def _arrays(group: Any) -> list[Any]:
    return list(group.arrays) + [a for g in group.groups for a in _arrays(g)]


def _array_text(array: Any) -> Text:
    return Text(f"{shown_name(array.name)}  {format_shape(array.shape)} {array.dtype}")


def _group_node(tree: Any, group: Any, depth: int | None, level: int) -> None:
    label = f"{group.name}  " + ("training state, not counted as params"
                                 if group.training_state else f"{group.params:,} params")
    if depth is not None and level >= depth and group.groups:
        count = len(_arrays(group))
        tree.add(Text(f"{label} ({count} arrays)"))
        return
    branch = tree.add(Text(label))
    for array in group.arrays:
        branch.add(_array_text(array))
    for child in group.groups:
        _group_node(branch, child, depth, level + 1)


COLUMNS = {"class": "Class", "shape": "Output shape", "params": "Params", "macs": "MACs",
           "memory": "Activations", "trainable": "Trainable", "connected": "Connected to"}


DEFAULT_COLUMNS = ["class", "shape", "params", "macs", "trainable", "connected"]


def layer_table(rows: list[LayerRow], columns: list[str] | None = None) -> Grid:
    columns = DEFAULT_COLUMNS if columns is None else columns
    grid = Grid(["Layer (path)", *(COLUMNS[key] for key in columns)],
                right=tuple(i + 1 for i, key in enumerate(columns)
                            if key in ("params", "macs", "memory")))
    for row in rows:
        indent = "  " * row.depth + ("└ " if row.depth else "")
        name = Text(indent + shown_name(row.name), style="bold" if row.is_model else "")
        cells = {"class": row.class_name, "params": f"{row.params:,}",
                 "trainable": "yes" if row.trainable else "no",
                 "macs": _per_call(row.macs, format_count, row.runs),
                 "memory": _per_call(row.activation_bytes, format_bytes, row.runs)}
        if len(row.output_shapes) > 1:
            cells["shape"] = "\n".join(
                f"@{i}: {format_shape(one_shape(s))}" for i, s in enumerate(row.output_shapes)
            )
            cells["connected"] = "\n".join(
                f"@{i}: {', '.join(map(shown_name, c)) or '-'}"
                for i, c in enumerate(row.inbound))
        else:
            cells["shape"] = format_shape(row.output_shape)
            cells["connected"] = ", ".join(map(shown_name, row.inbound[0])) \
                if row.inbound and row.inbound[0] else "-"
        grid.add_row(name, *(cells[key] for key in columns))
    return grid


def _per_call(values: list[int | None], fmt: Any, runs: int = 1) -> str:
    """One call's figure; `×N` when N calls (times the runs of a nested model called several
    times) cost the same; one line per call otherwise."""
    shown = ["?" if v is None else fmt(v) for v in values]
    if not shown:
        return "-"
    times = f" ×{runs}" if runs > 1 else ""
    if len(set(shown)) == 1:
        count = len(shown) * runs
        return shown[0] + (f" ×{count}" if count > 1 else "")
    return "\n".join(f"@{i}: {v}{times}" for i, v in enumerate(shown))


def parse_columns(text: str | None) -> list[str] | None:
    """`--columns shape,params,macs` -> the column keys, checked."""
    if text is None:
        return None
    keys = list(dict.fromkeys(k.strip().lower() for k in text.split(",") if k.strip()))
    unknown = [k for k in keys if k not in COLUMNS]
    if unknown or not keys:
        raise UsageError(f"--columns {text!r}: choose from {', '.join(COLUMNS)} "
                         f"(comma-separated; the layer name is always shown)")
    return keys


def render_layer(detail: LayerDetail, console: Console) -> None:
    row = detail.row
    layer_table([row]).print(console)
    if detail.weights:

        # a Grid: names and numbers are never cut or broken across lines (a narrow terminal
        # gets one block per array)
        weights = Grid(["Name", "Shape", "Dtype", "Trainable", "Min", "Max", "Mean"],
                       whole=(0, 1, 4, 5, 6), right=(4, 5, 6), title="Weights")
        for w in detail.weights:
            weights.add_row(
                w.name, format_shape(w.shape), w.dtype, "yes" if w.trainable else "no",
                *(("-" if v is None else f"{v:.6g}") for v in (w.min, w.max, w.mean)),
            )
        weights.print(console)
    else:
        console.print("Weights: none")
    console.print(Text("Config:", style="bold"))
    console.print(Text(json.dumps(detail.config, indent=2, default=str)))
    render_findings(detail.findings, console)


def render_findings(findings: list[Finding], console: Console) -> None:
    if not findings:
        console.print("Findings: none (nothing runs code, every class is part of Keras)")
        return
    grid = Grid(["Severity", "Layer", "What"], whole=(1,), title="Findings")
    for severity, layer, message in _grouped_findings(findings):
        grid.add_row(Text(severity, style=SEVERITY_STYLE.get(severity, "")), layer,
                     Text(message))
    grid.print(console)


def _grouped_findings(findings: list[Finding]) -> list[tuple[str, str, str]]:
    """One row per finding; but layers that all need the same package (every transformer
    layer of a keras_hub model) share one row naming the layers and classes. `--json` keeps
    every finding."""
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        if f.severity is UNLOADABLE and f.kind is FindingKind.CUSTOM and f.needs and f.layer:
            groups.setdefault(f.needs, []).append(f)
    rows: list[tuple[str, str, str]] = []
    done: set[str] = set()
    for f in findings:
        group = groups.get(f.needs or "") if f in groups.get(f.needs or "", []) else None
        if group is None or len(group) < 3:
            rows.append((f.severity, f.layer or "(file)", f.message))
        elif f.needs not in done:
            done.add(f.needs or "")
            layers = list(dict.fromkeys(g.layer for g in group))
            shown = ", ".join(layers[:4]) + (f", … ({len(layers)} layers)"
                                             if len(layers) > 4 else "")
            rows.append((f.severity, shown,
                         f"{len(layers)} layers use classes or functions from {f.needs} "
                         f"(--json lists each); loading needs {f.needs} (--custom-objects "
                         f"{f.needs})"))
    return rows
