"""`verify` for people: each output against the parent, weights, configs, the verdict."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from keras_cut.core.shown import shell_word
from keras_cut.layers.shapes import format_shape
from keras_cut.present.tables import Grid

if TYPE_CHECKING:  # for annotations only
    from keras_cut.export.bisect import Bisection
    from keras_cut.export.repro import Repro
    from keras_cut.verify.locate import Location
    from keras_cut.verify.report import VerifyReport



def render_verify(report: VerifyReport, console: Console) -> None:
    _outputs_table(report, console)
    _output_problems(report, console)
    if report.locate is not None:
        render_location(report.locate, console, report.passed)
    _rest(report, console)


def render_bisection(found: Bisection, console: Console) -> None:
    """`--bisect`: the prefixes exported afresh, and where a fresh export starts to differ."""
    grid = Grid(["Fresh export of the layers up to", "Outputs", "Proof"], whole=(0,))
    for prefix in found.tried:
        verdict = Text("passes", style="green") if prefix.proven else \
            Text("differs", style="red") if prefix.proven is False else \
            Text(f"not made: {prefix.problem}", style="yellow")
        grid.add_row(prefix.last, str(len(prefix.outputs)), verdict)
    refused = len(found.tried) - found.exports
    console.print(f"Bisection by fresh exports ({found.exports} "
                  f"export{'' if found.exports == 1 else 's'} over {found.layers} layers"
                  + (f"; {refused} prefix(es) could not be made" if refused else "") + "):")
    grid.print(console)
    if found.whole_passes:
        console.print(Text("A fresh export of every layer passes: the converter makes this "
                           "model right, and what differs is in the artifact given",
                           style="yellow"))
    elif found.first_failing is not None:
        console.print(Text(f"A fresh export first differs with {found.first_failing} "
                           f"({found.first_failing_class}) in it: where the converter goes "
                           "wrong", style="bold red"))
    else:
        console.print(Text("No prefix could be pinned: see the exports above", style="yellow"))


def render_repro(repro: Repro, console: Console) -> None:
    """`--save-repro`: what was written, and whether the part fails as the whole did."""
    start = ", ".join(repro.starts_at)
    console.print(f"Reproducer written to {repro.directory}: {repro.culprit} "
                  f"({repro.class_name}), {len(repro.layers)} layer(s) from {start}",
                  markup=False)  # layer names are text, never Rich markup
    if repro.part is not None:
        how = "cut out of the artifact" if repro.part_from == "the artifact" else \
            "exported afresh"
        error = f" (max abs error {repro.max_abs_error:.3g})" \
            if repro.max_abs_error is not None else ""
        console.print(Text(
            f"  {repro.part}, {how}, fails its golden file{error}: it reproduces the failure"
            if repro.reproduces else f"  {repro.part}, {how}, passes its golden file{error}: "
            "it does NOT reproduce the failure (what is wrong is in the given artifact, not "
            "in what the converter makes of this segment)",
            style="red" if repro.reproduces else "yellow"))
    for note in repro.notes:
        console.print(Text(f"  {note}", style="yellow"))


def render_location(location: Location, console: Console, passed: bool = True) -> None:
    """`--locate`: each matched layer against the artifact's tensor for it, the first one past
    tolerance marked, then what the error does and which layers had no tensor."""
    grid = Grid(["Layer", "Class", "Artifact tensor", "Max abs", "Mean abs", "Cosine",
                 "SNR dB", "Result"], whole=(0,), right=(3, 4, 5, 6))
    first = location.first
    for row in location.rows:
        result = Text("ok", style="green") if row.passed else \
            Text("FIRST" if row is first else "differs", style="bold red" if row is first
                 else "red")
        group = len(row.fused) + len(row.unseen)
        name = row.layer + (f" (+{group})" if group else "")
        # the model's own scope, the same on every row, is left out
        tensor = row.tensor.split("/", 1)[-1] + (f" [{row.layout}]" if row.layout else "")
        grid.add_row(name, row.class_name, tensor, f"{row.max_abs_error:.3g}",
                     f"{row.mean_abs_error:.3g}",
                     "n/a" if row.cosine is None else f"{row.cosine:.6f}",
                     "inf" if row.snr_db is None else f"{row.snr_db:.1f}", result)
    console.print(f"Inside the artifact (batch {location.batch}, {location.samples} samples; "
                  f"each layer judged by {_rule(location)}):")
    grid.print(console)
    if any(row.fused or row.unseen for row in location.rows):
        console.print("(+N): N layers fused into the tensor, or with no tensor of their own and "
                      "seen only through it (--json lists them)")
    if first is None:
        console.print(Text(f"Every matched layer agrees ({len(location.rows)} layers)",
                           style="green"))
        if not passed:
            console.print(Text("An output fails element by element while every layer agrees "
                               "within its scale: the differences are where values are small, "
                               "float32 round-off of arithmetic the converter reordered or "
                               "fused; a looser --atol (or --rtol) for that output is the usual "
                               "answer", style="yellow"))
    else:
        fused = (f", fused with {', '.join(first.fused)}" if first.fused else "") + \
            (f"; or in {', '.join(first.unseen)} before it, which have no tensor of their own "
             "and are seen only through it" if first.unseen else "")
        then = {"grows": "the error grows after it", "stays": "the error stays after it",
                "recovers": "later layers agree again"}.get(location.trend or "", "")
        console.print(Text(f"First layer past tolerance: {first.layer} ({first.class_name}"
                           f"{fused}), max abs error {first.max_abs_error:.3g}"
                           + (f"; {then}" if then else ""), style="bold red"))
        if location.disagreeing:
            console.print(Text(f"No tensor in the artifact agrees with {location.disagreeing}, "
                               "the first layer with tensors of its shape that no name ties "
                               "to a layer: the difference likely starts there", style="red"))
        if location.unmatched_before:
            console.print(Text(f"It may start earlier: no artifact tensor stands for "
                               f"{', '.join(location.unmatched_before)}, which run before it",
                               style="yellow"))
    if location.keep_float:
        losses = dict(location.own_losses)
        named = ", ".join(f"{layer} (loses {losses[layer]:.1f} dB on its own)"
                          for layer in location.keep_float)
        flags = " ".join(f"--keep-float {shell_word(layer)}" for layer in location.keep_float)
        console.print(Text(f"Quantization loses most in {named}. To keep it in float in an "
                           f"int8 .tflite: keras-cut export ... --quantize int8 {flags}",
                           style="yellow"))
    if location.unmatched:
        console.print(Text(f"No artifact tensor stands for {len(location.unmatched)} layer(s) "
                           f"(fused away, an identity at inference, or renamed by the "
                           f"converter): {', '.join(location.unmatched)}", style="yellow"))


def _rule(location: Location) -> str:
    return "cosine similarity" if location.judged_by == "cosine" else \
        "atol + rtol x its largest activation"


def _outputs_table(report: VerifyReport, console: Console) -> None:
    reference = "golden file" if report.golden else "parent"
    by_cosine = any(o.min_cosine is not None for o in report.outputs)  # a quantized artifact
    snr = ["SNR dB"] if by_cosine else []
    grid = Grid(["Output", f"From {reference} layer", "Shape", "Max abs", "Mean abs",
                 "Median abs", "Max rel", "Cosine", *snr,
                 "Judged by" if by_cosine else "atol, rtol", "Result"], whole=(0, 1),
                right=tuple(range(3, 9 + len(snr))))
    for o in report.outputs:
        result = Text("PASSED", style="green") if o.passed else Text("FAILED", style="bold red")
        rule = f"cosine >= {o.min_cosine:.10g}" if o.min_cosine is not None else \
            f"{o.atol:g}, {o.rtol:g}"
        grid.add_row(o.name, o.source, format_shape(o.shape), f"{o.max_abs_error:.3g}",
                     f"{o.mean_abs_error:.3g}", f"{o.median_abs_error:.3g}",
                     "n/a" if math.isnan(o.max_rel_error) else f"{o.max_rel_error:.3g}",
                     f"{o.cosine_similarity:.6f}",
                     *([f"{o.snr_db:.1f}"] if by_cosine else []), rule, result)
    grid.print(console)


def _output_problems(report: VerifyReport, console: Console) -> None:
    reference = "golden file" if report.golden else "parent"
    for o in report.outputs:
        if o.problem:
            console.print(Text(f"{o.name}: {o.problem}", style="red"))
        elif o.min_cosine is not None and not o.passed:
            console.print(Text(f"{o.name}: cosine similarity {o.cosine_similarity:.6f} is below "
                               f"{o.min_cosine:.10g}", style="red"))
        elif o.mismatched and o.min_cosine is None:
            console.print(Text(f"{o.name}: {o.mismatched:,} of {o.elements:,} values outside "
                               f"atol + rtol*|{reference}|", style="red"))
        if o.nan or o.inf:
            console.print(f"{o.name}: {o.nan} NaN and {o.inf} Inf values in the submodel output")


def _rest(report: VerifyReport, console: Console) -> None:
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
    artifact_only = report.runtime is not None and w.checked == 0 and report.configs.layers == 0
    if artifact_only:
        console.print(f"Artifact: run in {report.runtime}; its weights and layer configs are "
                      "its runtime's own, not compared")
        _verdict(report, console, "")
        return
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
    _verdict(report, console, f", {w.checked} weights identical")


def _verdict(report: VerifyReport, console: Console, weights: str) -> None:
    w, c = report.weights, report.configs
    failed = sum(not o.passed for o in report.outputs)
    data = f"seed {report.seed}" if report.seed is not None else "given inputs"
    cosines = sorted({o.min_cosine for o in report.outputs if o.min_cosine is not None})
    judged = f"min cosine {', '.join(f'{c:.10g}' for c in cosines)}" if cosines else \
        f"atol {report.atol:g}, rtol {report.rtol:g}"
    settings = f"{report.samples} samples, {data}, {judged}"
    if report.passed:
        console.print(Text(f"PASSED: {len(report.outputs)} of {len(report.outputs)} outputs "
                           f"agree{weights} ({settings})", style="green"))
    else:
        configs = f", {len(c.mismatched)} config difference(s)" if c.mismatched else ""
        arrays = f", {len(w.mismatched)} weights differ" if weights else ""
        console.print(Text(f"FAILED: {failed} of {len(report.outputs)} outputs disagree"
                           f"{arrays}{configs} ({settings})", style="bold red"))
