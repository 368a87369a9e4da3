"""`cut` and `convert` for people: the submodel's inputs and outputs and what it costs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console

from keras_cut.layers.shapes import format_shape
from keras_cut.model.endpoint import Endpoint, Role
from keras_cut.present.tables import Grid, format_bytes, format_count

if TYPE_CHECKING:  # for annotations only
    from keras_cut.cut.cutting import CutResult



WHY = {Role.PARENT_INPUT: "parent input", Role.CUT_INPUT: "cut here",
       Role.CROSSING: "crosses the cut"}


def endpoint_table(inputs: list[Endpoint], outputs: list[Endpoint], console: Console,
                   name: str = "Name") -> None:
    """A cut's (or an artifact's) inputs and outputs, each with the parent tensor it is."""
    grid = Grid(["", name, "Shape", "Dtype", "From parent layer", "Why"], whole=(1, 4))
    for t in inputs:
        grid.add_row("input", t.name, format_shape(t.shape), t.dtype or "?", t.source,
                     WHY.get(t.role, t.role.value))
    for t in outputs:
        grid.add_row("output", t.name, format_shape(t.shape), t.dtype or "?", t.source, "")
    grid.print(console)


def render_cut(result: CutResult, console: Console) -> None:
    endpoint_table(result.inputs, result.outputs, console)
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
