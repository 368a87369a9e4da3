"""`export` for people: the artifact's inputs and outputs (named as in the artifact) with the
parent tensors they stand for, what the artifact is, and its proof."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from keras_cut.core.shown import shell_word
from keras_cut.present.cut_view import endpoint_table
from keras_cut.present.tables import format_bytes
from keras_cut.present.verify_view import render_verify

if TYPE_CHECKING:  # for annotations only
    from keras_cut.export.exporting import ExportResult


def render_export(result: ExportResult, console: Console) -> None:
    endpoint_table(result.inputs, result.outputs, console, "Name in the artifact")
    cut = result.cut
    proof = {True: f"proven in {result.runtime} against the parent",
             False: f"DIFFERS from the parent in {result.runtime}",
             None: "not run (no proof asked for)"}[result.proven]
    console.print(
        f"Layers: {len(cut.layers)} kept, {len(cut.dropped)} dropped; params: {cut.params:,}\n"
        f"Artifact: {result.output} ({result.format}, {format_bytes(result.size_bytes)}): "
        f"{proof}",
        markup=False,
    )
    if result.verify is not None:
        render_verify(result.verify, console)
    for trial in result.float_trials:
        kept = ", ".join(trial.layers)
        flags = " ".join(f"--keep-float {shell_word(layer)}" for layer in trial.layers)
        if trial.problem:
            console.print(Text(f"int8 with {kept} in float could not be made: {trial.problem}",
                               style="yellow"))
        elif trial.proven:
            console.print(Text(f"int8 with {kept} kept in float is proven (output cosine "
                               f"{trial.min_cosine:.6f}): add {flags} to this command",
                               style="green"))
        else:
            console.print(Text(f"int8 with {kept} kept in float still differs (output cosine "
                               f"{trial.min_cosine:.6f})", style="yellow"))
