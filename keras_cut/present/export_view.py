"""`export` for people: the artifact's inputs and outputs (named as in the artifact) with the
parent tensors they stand for, what the artifact is, and its proof."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console

from keras_cut.layers.shapes import format_shape
from keras_cut.model.endpoint import Role
from keras_cut.present.tables import Grid, format_bytes
from keras_cut.present.verify_view import render_verify

if TYPE_CHECKING:  # for annotations only
    from keras_cut.export.exporting import ExportResult


def render_export(result: ExportResult, console: Console) -> None:
    why = {Role.PARENT_INPUT: "parent input", Role.CUT_INPUT: "cut here",
           Role.CROSSING: "crosses the cut"}
    grid = Grid(["", "Name in the artifact", "Shape", "Dtype", "From parent layer", "Why"],
                whole=(1, 4))
    for t in result.inputs:
        grid.add_row("input", t.name, format_shape(t.shape), t.dtype or "?", t.source,
                     why.get(t.role, t.role.value))
    for t in result.outputs:
        grid.add_row("output", t.name, format_shape(t.shape), t.dtype or "?", t.source, "")
    grid.print(console)
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
