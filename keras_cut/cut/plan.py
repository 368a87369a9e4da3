"""Plan a cut on the TensorFlow-free graph: which calls to keep, which tensors become inputs.

Planning checks every name and every impossibility before any model is loaded, so a wrong name
or an impossible cut fails in milliseconds without TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from keras_cut.core.address import CallAddress, Context, TensorAddress
from keras_cut.core.errors import CutError, Option, Part, UsageError
from keras_cut.model.endpoint import Endpoint, Role
from keras_cut.model.flatgraph import FlatGraph


@dataclass
class ModelCall:
    """A nested model kept whole: called as one layer."""

    context: Context
    layer: str
    call: int


@dataclass
class CutPlan:
    flat: FlatGraph
    inputs: list[Endpoint]  # an input's name is its InputLayer's in the submodel
    outputs: list[Endpoint]  # an output's name is set by the writer (`Submodel.outputs`)
    steps: list[CallAddress | ModelCall]  # in call order
    renames: dict[str, str] = field(default_factory=dict)  # parent path -> submodel name
    # every top-level layer of the submodel (a nested model kept whole: the model) -> the
    # parent layer path it is
    layer_sources: dict[str, str] = field(default_factory=dict)
    # the parent's dict-output keys, when the cut ends at all of the parent's outputs (a head):
    # the submodel returns the same dict
    output_keys: list[str] | None = None
    # the parent's dict-input keys, when the cut starts at all of the parent's inputs
    input_keys: list[str] | None = None

    @property
    def kept_paths(self) -> list[str]:
        """Layer paths the submodel keeps (a nested model kept whole counts as its layers)."""
        seen: dict[str, None] = {}
        for step in self.steps:
            if isinstance(step, ModelCall):
                prefix = self.flat.path(CallAddress(step.context, step.layer, step.call))
                layer = self.flat.layer(CallAddress(step.context, step.layer, step.call))
                assert layer.submodel is not None
                seen[prefix] = None
                for _, inner, _ in layer.submodel.walk():  # nested paths carry their prefix
                    if not inner.is_input:
                        seen[inner.path] = None
            else:
                seen[self.flat.path(step)] = None
        return list(seen)


def plan_cut(flat: FlatGraph, output_specs: list[str], input_specs: list[str],
             whole: bool = False) -> CutPlan:
    """The cut from `input_specs` (default: the model's inputs) to `output_specs` (default: its
    outputs); `whole` asks for the whole model (`convert`)."""
    if not output_specs and not input_specs and not whole:
        raise UsageError("give at least one ", Option.OUTPUT_LAYERS, " or ", Option.INPUT_LAYERS)
    out_picks = [flat.resolve_outputs(s, Option.OUTPUT_LAYERS) for s in output_specs]
    in_picks = [flat.resolve_outputs(s, Option.INPUT_LAYERS) for s in input_specs]
    _no_repeats(flat, out_picks, Option.OUTPUT_LAYERS)
    _no_repeats(flat, in_picks, Option.INPUT_LAYERS)
    outputs = _chosen_outputs(flat, out_picks)
    cut_inputs, pick_of = _chosen_inputs(flat, in_picks)
    downstream = _downstream(flat, cut_inputs) if in_picks else None
    if downstream is not None:
        _check_outputs_follow_inputs(outputs, cut_inputs, downstream, bool(out_picks))
    kept, found_inputs = _walk_back(flat, outputs, cut_inputs, downstream)
    _drop_unused_inputs(cut_inputs, found_inputs, pick_of, outputs)
    inputs = _order_inputs(flat, found_inputs, cut_inputs)
    if not kept and not whole:
        same = [label for t, label in outputs if t in cut_inputs]
        why: tuple[Part, ...] = ("the outputs are the inputs: ",)
        if same:
            why = (Option.INPUT_LAYERS, " and ", Option.OUTPUT_LAYERS,
                   f" name the same layer ({same[0]!r}): ")
        raise CutError(*why, "the cut would keep no layer at all; name an output after the input "
                       "layer")
    plan = CutPlan(
        flat=flat,
        inputs=[_planned_input(flat, t, role, cut_inputs) for t, role in inputs],
        outputs=[_planned(flat, t, label, Role.OUTPUT) for t, label in outputs],
        steps=_collapse(flat, [n for n in flat.nodes if n in kept], inputs, outputs),
        output_keys=flat.top.output_keys if not out_picks else None,
        input_keys=flat.top.input_keys if not in_picks else None,
    )
    _assign_names(plan)
    return plan


Picks = list[tuple[CallAddress, list[int]]]  # each named call and which of its outputs


def _chosen_outputs(flat: FlatGraph, out_picks: Picks) -> list[tuple[TensorAddress, str]]:
    """The tensors the cut ends at: `NAME[i]` keeps output i, a plain name all of them; no
    --output-layer, the model's outputs."""
    if not out_picks:
        return [output_labels(flat, t.node)[t.index] for t in flat.parent_outputs]
    outputs: list[tuple[TensorAddress, str]] = []
    for node, chosen in out_picks:
        labels = output_labels(flat, node)
        outputs += [labels[i] for i in chosen]
    return outputs


def _chosen_inputs(flat: FlatGraph, in_picks: Picks
                   ) -> tuple[dict[TensorAddress, str], dict[TensorAddress, int]]:
    """The tensors the cut starts at (with their labels), and which --input-layer named each."""
    cut_inputs: dict[TensorAddress, str] = {}
    pick_of: dict[TensorAddress, int] = {}
    for number, (node, chosen) in enumerate(in_picks):
        labels = output_labels(flat, node)
        for i in chosen:
            cut_inputs.setdefault(*labels[i])
            pick_of.setdefault(labels[i][0], number)
    return cut_inputs, pick_of


def _check_outputs_follow_inputs(outputs: list[tuple[TensorAddress, str]],
                                 cut_inputs: dict[TensorAddress, str], downstream: set[CallAddress],
                                 named: bool) -> None:
    """Every output of a head must depend on its input layers."""
    for t, label in outputs:
        if t in cut_inputs or t.node in downstream:
            continue
        if not named:  # the user gave no --output-layer: the model's outputs
            raise CutError(
                f"the model output {label!r} does not depend on ", Option.INPUT_LAYERS,
                f" {_names(cut_inputs)}, so a head from there cannot compute it; add ",
                Option.OUTPUT_LAYERS, " for the outputs you want after the input layer"
            )
        raise CutError(
            Option.OUTPUT_LAYERS, f" {label!r} does not depend on ", Option.INPUT_LAYERS,
            f" {_names(cut_inputs)}: it comes before the cut or sits on another branch; choose "
            "an output after the input layer", layer=label
        )


def _walk_back(flat: FlatGraph, outputs: list[tuple[TensorAddress, str]],
               cut_inputs: dict[TensorAddress, str], downstream: set[CallAddress] | None
               ) -> tuple[set[CallAddress], dict[TensorAddress, Role]]:
    """From the outputs back to where the cut starts: the calls kept, and each tensor where
    the walk stopped with its kind (a named input, a parent input, a crossing tensor)."""
    kept: set[CallAddress] = set()
    found: dict[TensorAddress, Role] = {}
    parent_inputs = set(flat.parent_inputs)
    stack = [t for t, _ in outputs]
    seen: set[TensorAddress] = set()
    while stack:
        t = stack.pop()
        if t in seen:
            continue
        seen.add(t)
        if t in cut_inputs:
            found[t] = Role.CUT_INPUT
        elif t in parent_inputs:
            found[t] = Role.PARENT_INPUT
        elif downstream is not None and t.node not in downstream:
            found[t] = Role.CROSSING
        else:
            kept.add(t.node)
            stack.extend(flat.inputs_of(t.node))
    return kept, found


def _drop_unused_inputs(cut_inputs: dict[TensorAddress, str], found: dict[TensorAddress, Role],
                        pick_of: dict[TensorAddress, int],
                        outputs: list[tuple[TensorAddress, str]]) -> None:
    """An input layer named without [i] is used when any of its outputs is; its unused outputs
    are simply not inputs (an LSTM's states when only its sequence is read; a nested model's
    outputs come from different inner layers: grouped by the name given). A named input the
    walk never reached is an error."""
    used_picks = {pick_of[t] for t in found if t in pick_of}
    for t in [t for t in cut_inputs if t not in found and pick_of[t] in used_picks]:
        del cut_inputs[t]
    unused = [label for t, label in cut_inputs.items() if t not in found]
    if unused:
        outs = ", ".join(repr(label) for _, label in outputs)
        raise CutError(
            Option.INPUT_LAYERS, f" {unused[0]!r} is not on the way to the outputs ({outs}): it "
            "comes after them or sits on another branch; drop it or choose another output",
            layer=unused[0]
        )


def _no_repeats(flat: FlatGraph, picks: Picks, option: Option) -> None:
    """Each tensor named once: `lstm[1]` and `lstm[2]` are two, `lstm` and `lstm[1]` repeat."""
    seen: set[tuple[CallAddress, int]] = set()
    for node, chosen in picks:
        if any((node, i) in seen for i in chosen):
            raise UsageError(option, f" {flat.label(node)!r} is given twice",
                             layer=flat.label(node))
        seen.update((node, i) for i in chosen)


def _names(tensors: dict[TensorAddress, str]) -> str:
    labels = list(dict.fromkeys(tensors.values()))
    return ", ".join(repr(label) for label in labels)


def _downstream(flat: FlatGraph, starts: dict[TensorAddress, str]) -> set[CallAddress]:
    """Every call that (transitively) consumes one of `starts`."""
    found: set[CallAddress] = set()
    stack = list(starts)
    while stack:
        for node in flat.consumers.get(stack.pop(), []):
            if node not in found:
                found.add(node)
                stack.extend(flat.outputs_of(node))
    return found


def _order_inputs(
    flat: FlatGraph, found: dict[TensorAddress, Role], cut_inputs: dict[TensorAddress, str]
) -> list[tuple[TensorAddress, Role]]:
    """The inputs the user named, in their order; then parent inputs; then crossing tensors."""
    ordered = [(t, Role.CUT_INPUT) for t in cut_inputs if found.get(t) == Role.CUT_INPUT]
    ordered += [(t, Role.PARENT_INPUT) for t in flat.parent_inputs
                if found.get(t) == Role.PARENT_INPUT]
    crossing = [t for t, role in found.items() if role == Role.CROSSING]
    crossing.sort(key=lambda t: (flat.position.get(t.node, -1), t.index))
    return ordered + [(t, Role.CROSSING) for t in crossing]


def output_labels(flat: FlatGraph, node: CallAddress) -> list[tuple[TensorAddress, str]]:
    """A call's output tensors, each with the name a user types for it: the call's label,
    with `[i]` when the call has several outputs."""
    outs = flat.outputs_of(node)
    label = flat.label(node)
    return [(t, f"{label}[{i}]" if len(outs) > 1 else label) for i, t in enumerate(outs)]


def _planned(flat: FlatGraph, t: TensorAddress, source: str, role: Role) -> Endpoint:
    shape, dtype = flat.shape_dtype(t)
    return Endpoint(name="", source=source, role=role, tensor=t, shape=shape, dtype=dtype)


def _planned_input(flat: FlatGraph, t: TensorAddress, role: Role,
                   cut_inputs: dict[TensorAddress, str]) -> Endpoint:
    source = cut_inputs.get(t) or output_labels(flat, t.node)[t.index][1]
    planned = _planned(flat, t, source, role)
    if planned.shape is None:
        raise CutError(
            f"the shape of {source!r} is not recorded in the file and keras-cut cannot work it "
            "out, so it cannot become an input; cut at a neighbouring layer"
        )
    return planned


def _collapse(
    flat: FlatGraph, nodes: list[CallAddress], inputs: list[tuple[TensorAddress, Role]],
    outputs: list[tuple[TensorAddress, str]],
) -> list[CallAddress | ModelCall]:
    """Keep a nested model whole where the cut takes all of it and uses none of its insides."""
    kept = set(nodes)
    boundary = {t for t, _ in inputs} | {t for t, _ in outputs}
    inside: dict[Context, list[CallAddress]] = {}  # every nested-model call -> the calls within it
    for node in flat.nodes:
        for depth in range(1, len(node.context) + 1):
            inside.setdefault(node.context[:depth], []).append(node)
    whole: dict[Context, bool] = {}
    steps: list[CallAddress | ModelCall] = []
    done: set[Context] = set()
    for node in nodes:
        outer = next((node.context[:depth] for depth in range(1, len(node.context) + 1)
                      if _kept_whole(flat, node.context[:depth], inside, kept, boundary, whole)),
                     None)
        if outer is None:
            steps.append(node)
        elif outer not in done:
            done.add(outer)
            steps.append(ModelCall(outer[:-1], outer[-1][0], outer[-1][1]))
    return steps


def _kept_whole(flat: FlatGraph, candidate: Context, inside: dict[Context, list[CallAddress]],
                kept: set[CallAddress], boundary: set[TensorAddress],
                memo: dict[Context, bool]) -> bool:
    """The cut keeps every call inside this nested-model call and uses none of its insides."""
    if candidate not in memo:
        inner = inside.get(candidate, [])
        model_outputs = set(flat.outputs_of(CallAddress(candidate[:-1], *candidate[-1])))
        memo[candidate] = all(n in kept for n in inner) and not any(
            t in boundary and t not in model_outputs
            for n in inner for t in flat.outputs_of(n)
        )
    return memo[candidate]


def _assign_names(plan: CutPlan) -> None:
    """Keras names: inputs after their layer; flattened layers keep theirs unless they clash."""
    flat = plan.flat
    taken: dict[str, str] = {}  # name -> the parent layer path that holds it
    paths: dict[str, str] = {}  # layer path -> its own name, top-level layers first
    for step in sorted(plan.steps, key=lambda step: len(step.context) > 0):
        paths.setdefault(flat.path(CallAddress(step.context, step.layer, step.call)), step.layer)
    for layer_path, name in paths.items():
        if name in taken:  # a layer of an opened-up nested model whose name is taken
            base = new = layer_path.replace("/", "_")
            n = 1
            while new in taken:
                new, n = f"{base}_{n}", n + 1
            plan.renames[layer_path] = new
            name = new
        taken[name] = layer_path
        plan.layer_sources[name] = layer_path
    for planned in plan.inputs:
        base = planned.parent.layer
        if planned.role is not Role.PARENT_INPUT:
            layer = flat.layer(planned.parent)
            if len(layer.calls) > 1:
                base += f"_call{planned.parent.call}"
            if planned.parent.index:
                base += f"_{planned.parent.index}"
        name, n = base, 1
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        taken[name] = planned.source
        planned.name = name
