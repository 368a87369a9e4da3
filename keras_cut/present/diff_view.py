"""`diff` for people: what changed between two files, each change with its kind."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from keras_cut.present.tables import format_bytes

if TYPE_CHECKING:  # for annotations only
    from keras_cut.diff.diffing import DiffReport



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
