"""`verify` for people: each output against the parent, weights, configs, the verdict."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from keras_cut.layers.shapes import format_shape
from keras_cut.present.tables import Grid

if TYPE_CHECKING:  # for annotations only
    from keras_cut.verify.report import VerifyReport



def render_verify(report: VerifyReport, console: Console) -> None:
    _outputs_table(report, console)
    _output_problems(report, console)
    _rest(report, console)


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
