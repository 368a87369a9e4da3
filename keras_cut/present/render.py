"""Turn library results into Rich output for people or one JSON document for machines."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.segment import Segment
from rich.text import Text

from keras_cut.core.errors import UsageError
from keras_cut.core.shown import name as shown_name
from keras_cut.core.shown import visible
from keras_cut.inspect.inspection import InspectReport, LayerDetail, LayerRow
from keras_cut.layers.shapes import format_shape
from keras_cut.model.classmodel import ClassModelReport
from keras_cut.model.endpoint import Role
from keras_cut.model.safety import BROKEN, UNLOADABLE, UNSAFE, Finding, FindingKind

if TYPE_CHECKING:  # imported for annotations only: inspect need not load them
    from keras_cut.cut.cutting import CutResult
    from keras_cut.diff.diffing import DiffReport
    from keras_cut.model.costs import Cost
    from keras_cut.verify.verification import VerifyReport

SEVERITY_STYLE = {UNSAFE: "bold red", BROKEN: "bold red", UNLOADABLE: "yellow",
                  "warning": "yellow"}


def _plain() -> bool:
    """NO_COLOR (https://no-color.org) and TERM=dumb: no escape codes at all, bold included."""
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"


class ShownConsole(Console):
    """A Console that never sends a control or bidirectional formatting character from text
    it is given: each is shown as a visible stand-in (`shown.visible`), on every path to the
    stream (tables, fast tables, plain lines, errors). Rich's own escape codes (colours, styles)
    are added after, from its styles, and pass."""

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            segment if segment.control else Segment(visible(segment.text), segment.style)
            for segment in buffer)


def stdout_console() -> Console:
    """Results go to stdout; a pipe or file gets plain text as wide as the content needs, so
    nothing is wrapped or cut (a terminal gets its own width), or as wide as COLUMNS says
    where the user set it."""
    tty = sys.stdout.isatty()
    return ShownConsole(file=sys.stdout, width=None if tty else _columns() or PIPE_WIDTH,
                        highlight=False, soft_wrap=False,
                        color_system=None if _plain() else "auto")


def _columns() -> int | None:
    value = os.environ.get("COLUMNS", "")
    return int(value) if value.isdigit() and 20 <= int(value) <= PIPE_WIDTH else None


def stderr_console() -> Console:
    return ShownConsole(file=sys.stderr, highlight=False,
                        color_system=None if _plain() else "auto")


PIPE_WIDTH = 10_000  # "unlimited": tables size their columns to the content


def _shown_cell(cell: Any) -> Any:
    """A cell as shown: control characters visible (a cell's own line breaks, between calls
    of a shared layer, stay: names are made one line with `shown_name` where they are put in)."""
    if isinstance(cell, Text):
        shown = visible(cell.plain)
        return cell if shown == cell.plain else Text(shown, style=cell.style)
    return visible(str(cell)) if isinstance(cell, str) else cell


class Grid:
    """A table whose name columns are never cut or wrapped: on a terminal too narrow for them,
    each row is printed as a block (the name, then `header: value` lines) instead."""

    def __init__(self, headers: list[str], whole: tuple[int, ...] = (0,),
                 right: tuple[int, ...] = (), title: str | None = None):
        self.headers, self.whole, self.right, self.title = headers, whole, right, title
        self.rows: list[list[Any]] = []

    def add_row(self, *cells: Any) -> None:
        """Cells as shown (`visible`) before any width is measured, so columns line up."""
        self.rows.append([_shown_cell(cell) for cell in cells])

    def table(self) -> Any:
        from rich.table import Table  # the fast path (`fast_text`) does without it

        table = Table(header_style="bold", title=self.title, title_justify="left")
        for i, header in enumerate(self.headers):
            table.add_column(Text(header), justify="right" if i in self.right else "left",
                             no_wrap=i in self.whole, overflow="fold")
        for row in self.rows:  # plain strings are text, never Rich markup ("[red]x" is a name)
            table.add_row(*(cell if isinstance(cell, Text) else Text(str(cell)) for cell in row))
        return table

    def needed_width(self) -> int:
        """The narrowest table that keeps name columns whole and breaks no other word."""
        total = 1  # the left border
        for i, header in enumerate(self.headers):
            cells = [str(row[i]) for row in self.rows] + [header]
            lines = [line for cell in cells for line in cell.splitlines()]
            if i in self.whole:
                width = max((len(line) for line in lines), default=0)
            else:
                width = max((len(w) for line in lines for w in line.split()), default=0)
            total += width + 3  # padding both sides and a border
        return total

    def natural_width(self) -> int:
        """The table's width with every cell on its own lines, unwrapped."""
        return 1 + sum(w + 3 for w in self._column_widths())

    def _column_widths(self) -> list[int]:
        from rich.cells import cell_len

        return [max(cell_len(line) for cell in [header, *(row[i] for row in self.rows)]
                    for line in (str(cell).split("\n") or [""]))
                for i, header in enumerate(self.headers)]

    def fast_text(self) -> Text:
        """What Rich prints for `table()` when nothing needs wrapping, assembled directly:
        Rich measures and renders every cell of a 200-row table, which costs more than
        reading the model (`inspect` of ResNet50). `tests/test_render.py` holds it to Rich's
        own output."""
        widths = self._column_widths()
        out = Text(end="")
        if self.title:
            out.append(self.title.ljust(1 + sum(w + 3 for w in widths)) + "\n")
        out.append("┏" + "┳".join("━" * (w + 2) for w in widths) + "┓\n")
        self._fast_row(out, [Text(h, style="bold") for h in self.headers], widths, "┃")
        out.append("┡" + "╇".join("━" * (w + 2) for w in widths) + "┩\n")
        for row in self.rows:
            self._fast_row(out, [c if isinstance(c, Text) else Text(str(c)) for c in row],
                           widths, "│")
        out.append("└" + "┴".join("─" * (w + 2) for w in widths) + "┘\n")
        return out

    def _fast_row(self, out: Text, cells: list[Text], widths: list[int], bar: str) -> None:
        lines = [cell.split("\n", allow_blank=True) for cell in cells]
        height = max(len(cell_lines) for cell_lines in lines)
        for n in range(height):
            out.append(bar)
            for i, cell_lines in enumerate(lines):
                line = cell_lines[n] if n < len(cell_lines) else Text("")
                gap = " " * (widths[i] - line.cell_len)
                right = i in self.right
                out.append(" " + (gap if right else ""))
                out.append_text(line)
                out.append(("" if right else gap) + " " + bar)
            out.append("\n")

    def fast_ok(self) -> bool:
        """Cells the fast table renders as Rich does: Rich trims and re-justifies lines that
        start or end with whitespace, and expands tabs; those tables go through Rich."""
        cells = [str(c) for c in (*self.headers, *(cell for row in self.rows for cell in row))]
        return bool(self.rows) and not any(cell.endswith("\n") for cell in cells) and all(
            line == line.strip() and line.isprintable()
            for cell in cells for line in cell.split("\n"))

    def print(self, console: Console) -> None:
        width = self.natural_width() if self.fast_ok() else console.width + 1
        if width <= console.width and len(self.title or "") <= width:
            console.print(self.fast_text(), soft_wrap=True, end="")
            return
        if self.needed_width() <= console.width:
            console.print(self.table())
            return
        if self.title:
            console.print(Text(self.title, style="bold"))
        first = self.whole[0] if self.whole else 0
        for row in self.rows:
            heading = row[first]
            console.print(heading if isinstance(heading, Text) else
                          Text(str(heading), style="bold"), soft_wrap=True)
            for i, cell in enumerate(row):
                if i == first or not str(cell).strip():
                    continue
                label = self.headers[i] or "Role"
                console.print(Text.assemble(f"  {label}: ", cell if isinstance(cell, Text)
                                            else Text(str(cell))), soft_wrap=True)


def print_json(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, indent=2, allow_nan=False, default=_default) + "\n")


def _default(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def format_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{count} B"


def format_count(count: int) -> str:
    """3,857,973,248 -> "3.86 G": MACs at a glance (exact figures are in --json)."""
    value = float(count)
    for unit in ("", "K", "M", "G", "T"):
        if value < 1000 or unit == "T":
            return f"{count:,}" if not unit else f"{value:.2f} {unit}"
        value /= 1000
    return f"{count:,}"


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
    _header(rows, console)
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


def _header(rows: list[tuple[str, str]], console: Console) -> None:
    """Label/value lines; one line each on a narrow terminal, never wrapped inside a name."""
    widest = max(len(line) for _, value in rows for line in value.splitlines() or [""])
    fast = _header_text(rows)
    if fast is not None and fast[1] <= console.width:
        console.print(fast[0], soft_wrap=True, end="")
        return
    if 15 + widest <= console.width:
        from rich.table import Table

        header = Table.grid(padding=(0, 2))
        header.add_column(style="bold")
        header.add_column(overflow="fold")
        for label, value in rows:
            header.add_row(Text(label), Text(value))
        console.print(header)
    else:
        for label, value in rows:
            for i, line in enumerate(value.splitlines() or [""]):
                console.print(Text.assemble((f"{label}: " if i == 0 else "  ", "bold"), line),
                              soft_wrap=True)


def _header_text(rows: list[tuple[str, str]]) -> tuple[Text, int] | None:
    """What Rich prints for the header grid (labels in bold, two spaces, values) without its
    trailing padding, assembled directly, and its width; None where Rich would lay it out
    differently (held to Rich's output, line ends aside, by tests/test_render.py)."""
    from rich.cells import cell_len

    lines = [(label if i == 0 else "", line) for label, value in rows
             for i, line in enumerate(value.split("\n"))]
    plain = all(text == text.strip() and text.isprintable()
                for label, line in lines for text in (label, line))
    if not lines or not plain or any(value.endswith("\n") for _, value in rows):
        return None
    left = max(cell_len(label) for label, _ in rows)
    right = max(cell_len(line) for _, line in lines)
    if not left or not right:
        return None
    out = Text(end="")
    for label, line in lines:
        out.append(label + " " * (left - cell_len(label)), style="bold")
        out.append("  " + line + "\n")  # Rich pads the last column; a line ends at its text
    return out, left + 2 + right


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
    _header(rows, console)
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


def cost_lines(cost: Cost) -> str:
    """The footer's per-sample totals, saying "at least" where a part is unknown."""
    macs = format_count(cost.macs)
    if macs != f"{cost.macs:,}":
        macs += f" ({cost.macs:,})"
    if not cost.macs_known:
        macs = f"at least {macs}; unknown for {len(cost.unknown)} layer call(s): " + \
            ", ".join(cost.unknown[:3]) + (", ..." if len(cost.unknown) > 3 else "")
    memory = format_bytes(cost.activation_bytes)
    if not cost.activation_known:
        memory = "at least " + memory
    largest = f"; largest: {cost.largest[0]} ({format_bytes(cost.largest[1])})" \
        if cost.largest else ""
    return f"MACs per sample: {macs}\nActivation memory per sample: {memory}{largest}"


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
                f"@{i}: {format_shape(_one(s))}" for i, s in enumerate(row.output_shapes)
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


def _one(shapes: list[Any]) -> Any:
    return shapes[0] if len(shapes) == 1 else shapes


def render_cut(result: CutResult, console: Console) -> None:
    why = {Role.PARENT_INPUT: "parent input", Role.CUT_INPUT: "cut here",
           Role.CROSSING: "crosses the cut"}
    grid = Grid(["", "Name", "Shape", "Dtype", "From parent layer", "Why"], whole=(1, 4))
    for t in result.inputs:
        grid.add_row("input", t.name, format_shape(t.shape), t.dtype or "?", t.source,
                     why.get(t.role, t.role.value))
    for t in result.outputs:
        grid.add_row("output", t.name, format_shape(t.shape), t.dtype or "?", t.source, "")
    grid.print(console)
    cost, whole = result.cost, result.parent_cost
    macs = _share(cost.macs, cost.macs_known, whole.macs, whole.macs_known,
                  result.macs_share(), format_count)
    memory = _share(cost.activation_bytes, cost.activation_known, whole.activation_bytes,
                    whole.activation_known, result.memory_share(), format_bytes)
    console.print(
        f"Layers: {len(result.layers)} kept, {len(result.dropped)} dropped\n"
        f"Params: {result.params:,} (trainable {result.trainable_params:,}"
        f"{', frozen' if result.frozen else ''})\n"
        f"MACs per sample: {macs}\n"
        f"Activation memory per sample: {memory}\n"
        f"Saved: {result.output} ({result.format}, {format_bytes(result.size_bytes)})",
        markup=False,
    )


def _share(part: int, part_known: bool, whole: int, whole_known: bool,
           fraction: float | None, fmt: Any) -> str:
    """"2.12 G, 55.0% of the parent's 3.86 G" ("at least" where a part is unknown)."""
    text = ("" if part_known else "at least ") + fmt(part)
    if fraction is not None:
        text += f", {100 * fraction:.1f}% of the parent's {fmt(whole)}"
    elif whole:
        text += f" (the parent's: {'' if whole_known else 'at least '}{fmt(whole)}; the share is "
        text += "unknown, as some layers' costs are)"
    return text


def render_verify(report: VerifyReport, console: Console) -> None:
    reference = "golden file" if report.golden else "parent"
    grid = Grid(["Output", f"From {reference} layer", "Shape", "Max abs", "Mean abs",
                 "Median abs", "Max rel", "Cosine", "atol, rtol", "Result"], whole=(0, 1),
                right=(3, 4, 5, 6, 7, 8))
    for o in report.outputs:
        result = Text("PASSED", style="green") if o.passed else Text("FAILED", style="bold red")
        grid.add_row(o.name, o.source, format_shape(o.shape), f"{o.max_abs_error:.3g}",
                     f"{o.mean_abs_error:.3g}", f"{o.median_abs_error:.3g}",
                     f"{o.max_rel_error:.3g}", f"{o.cosine_similarity:.6f}",
                     f"{o.atol:g}, {o.rtol:g}", result)
    grid.print(console)
    for o in report.outputs:
        if o.problem:
            console.print(Text(f"{o.name}: {o.problem}", style="red"))
        elif o.mismatched:
            console.print(Text(f"{o.name}: {o.mismatched:,} of {o.elements:,} values outside "
                               f"atol + rtol*|{reference}|", style="red"))
        if o.nan or o.inf:
            console.print(f"{o.name}: {o.nan} NaN and {o.inf} Inf values in the submodel output")
    d = report.divergence
    if d is not None and d.layer:
        error = f"max abs error {d.max_abs_error:.3g}" if d.max_abs_error is not None \
            else d.problem
        console.print(Text(f"First diverging layer (batch {d.batch}, {d.compared} layer "
                           f"outputs compared): {d.layer} (parent {d.parent_layer}), {error}",
                           style="red"))
    elif d is not None:
        console.print(Text(f"First diverging layer: none of {d.compared} compared on batch "
                           f"{d.batch}; {d.problem}", style="red"))
    w = report.weights
    if w.passed:
        console.print(f"Weights: {w.checked} compared bit for bit with the {w.against}, all "
                      "identical")
    else:
        console.print(Text(f"Weights: {len(w.mismatched)} of {w.checked} differ from the "
                           f"{w.against}:", style="red"))
        for line in w.mismatched:
            console.print(Text(f"  {line}"))
    c = report.configs
    if c.passed:
        console.print(f"Configs: {c.layers} layers and {c.calls} calls compared with the "
                      f"{c.against}, all identical")
    else:
        console.print(Text(f"Configs: {len(c.mismatched)} difference(s) from the {c.against} "
                           f"({c.layers} layers and {c.calls} calls compared):", style="red"))
        for line in c.mismatched:
            console.print(Text(f"  {line}"))
    if c.training_only:
        console.print(Text(f"Training settings: {len(c.training_only)} differ from the "
                           f"{c.against} (no effect with training=False, so not a failure):",
                           style="yellow"))
        for line in c.training_only:
            console.print(Text(f"  {line}"))
    failed = sum(not o.passed for o in report.outputs)
    data = f"seed {report.seed}" if report.seed is not None else "given inputs"
    settings = (f"{report.samples} samples, {data}, atol {report.atol:g}, "
                f"rtol {report.rtol:g}")
    if report.passed:
        console.print(Text(f"PASSED: {len(report.outputs)} of {len(report.outputs)} outputs "
                           f"agree, {w.checked} weights identical ({settings})", style="green"))
    else:
        configs = f", {len(c.mismatched)} config difference(s)" if c.mismatched else ""
        console.print(Text(f"FAILED: {failed} of {len(report.outputs)} outputs disagree, "
                           f"{len(w.mismatched)} weights differ{configs} ({settings})",
                           style="bold red"))


def render_diff(report: DiffReport, console: Console) -> None:
    """Changed lines only, grouped: endpoints, the rest of the file, then layers, then totals
    and one summary line."""
    for side, info in (("A", report.a), ("B", report.b)):
        fmt = "tf.keras 2 .h5" if info["legacy"] else f".{info['format']}"
        console.print(Text(f"{side}: {info['file']} ({fmt}, Keras "
                           f"{info['keras_version'] or 'version not recorded'})"))
    for note in report.notes:
        console.print(Text(f"Note: {note}", style="yellow"))
    if report.endpoints:
        console.print(Text("Inputs and outputs:", style="bold"))
        for e in report.endpoints:
            console.print(Text(f"  {e.kind}: {e.old or '(none)'} -> {e.new or '(none)'}"))
    if report.files:
        console.print(Text("File:", style="bold"))
        for f in report.files:
            old, new = ("(none)" if v is None else _value(v) for v in (f.old, f.new))
            console.print(Text(f"  {f.what}: {old} -> {new}{_kind_tag(f.kind, report.ignore)}"))
    if report.layers:
        console.print(Text("Layers:", style="bold"))
    for c in report.layers:
        _render_layer_change(c, report.ignore, console)
    console.print(Text(_totals_line(report)))
    console.print(_diff_verdict(report))


DIFF_MARKS = {"added": ("+", "green"), "removed": ("-", "red"), "renamed": ("~", "yellow"),
              "changed": ("~", "yellow")}


def _render_layer_change(c: Any, ignore: Any, console: Console) -> None:
    mark, style = DIFF_MARKS[c.status]
    name = f"{c.path} -> {c.new_path}" if c.new_path else c.path
    kind = f"{c.class_name} -> {c.new_class_name}" if c.new_class_name else c.class_name
    status = f"  {c.status}" if c.status != "changed" else ""
    console.print(Text(f"  {mark} {name} ({kind}){status}", style=style))
    if c.connections:
        console.print(Text(f"      inputs: {c.connections[0]} -> {c.connections[1]}"))
    for field_change in c.config + c.arguments:
        console.print(Text(f"      {field_change.field}: {_value(field_change.old)} -> "
                           f"{_value(field_change.new)}{_kind_tag(field_change.kind, ignore)}"))
    for w in c.weights:
        console.print(Text(f"      {_weight_line(w)}{_kind_tag(w.kind, ignore)}"))


def _diff_verdict(report: DiffReport) -> Text:
    s = report.summary
    parts = [f"{s[k]} {k}" for k in ("added", "removed", "renamed", "changed") if s[k]]
    counted = (("arrays_differ", "array(s) differ"),
               ("endpoints_changed", "input/output change(s)"),
               ("file_changes", "other file change(s)"))
    parts += [f"{s[key]} {what}" for key, what in counted if s[key]]
    if report.ignore:
        parts.append(f"ignoring {', '.join(sorted(str(k) for k in report.ignore))}")
    checked = "structure only" if report.structure_only else \
        f"{report.arrays_compared} arrays compared" + \
        (f", atol {report.atol:g}" if report.atol else "")
    if report.identical and parts:
        return Text(f"IDENTICAL except what is ignored: {', '.join(parts)} ({checked})",
                    style="green")
    if report.identical:
        return Text(f"IDENTICAL ({checked})", style="green")
    return Text(f"DIFFERENT: {', '.join(parts)} ({checked})", style="bold red")


def _value(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


def _kind_tag(kind: Any, ignore: Any) -> str:
    """What a difference means, where it is not plain behaviour, and whether it is ignored."""
    tag = "" if str(kind) == "behaviour" else f" [{kind}]"
    return tag + (" (ignored)" if kind in ignore else "")


def _weight_line(w: Any) -> str:
    if w.status in ("added", "removed"):
        return f"{w.name} {w.old or w.new}: {w.status}"
    if w.status in ("shape", "dtype"):
        return f"{w.name}: {w.old} -> {w.new}"
    if w.status == "bits":
        return f"{w.name} {w.old}: equal values, other bit patterns (0.0 vs -0.0, NaN payloads)"
    fraction = f"{100 * w.changed_fraction:.3g}% of elements" if w.changed_fraction is not None \
        else ""
    special = "".join(f", {n} {what}" for n, what in ((w.nan, "NaN on one side only"),
                                                      (w.inf, "infinities that differ")) if n)
    if w.max_abs_diff is None and w.mean_abs_diff is None:
        return f"{w.name} {w.old}: values differ ({fraction}{special})"
    return (f"{w.name} {w.old}: values differ (max abs {w.max_abs_diff:.3g}, mean abs "
            f"{w.mean_abs_diff:.3g} over finite elements, {fraction}{special})")


def _totals_line(report: DiffReport) -> str:
    def pair(key: str, fmt: Any) -> str:
        old, new = report.totals[key]
        delta = "" if old == new else f" ({'+' if new > old else ''}{new - old:,})" \
            if key != "weight_bytes" else ""
        return f"{fmt(old)} -> {fmt(new)}{delta}" if old != new else fmt(old)

    return (f"Totals: params {pair('params', lambda v: f'{v:,}')}, trainable "
            f"{pair('trainable_params', lambda v: f'{v:,}')}, weights "
            f"{pair('weight_bytes', format_bytes)}")
