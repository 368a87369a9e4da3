"""What in the parent each part of a submodel is, worked out from both files without
TensorFlow: each submodel input and output is an exact parent tensor (layer call and output
index, at any depth), each submodel layer a parent layer path.

A submodel `cut` wrote carries a record saying so exactly (`provenance`); other files are
matched by name, and whatever cannot be matched unambiguously is an error naming it, never a
guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keras_cut.core.address import CallAddress, TensorAddress
from keras_cut.core.errors import CutError, LayerNameError
from keras_cut.model.endpoint import Endpoint, Role, tensor_from_json
from keras_cut.model.flatgraph import FlatGraph

INPUT_ROLES = (Role.PARENT_INPUT, Role.CUT_INPUT, Role.CROSSING)


@dataclass
class Link:
    """One submodel input or output: the endpoint (the parent tensor it stands for, its name
    unique in the report: the layer name, `[i]`/`@N` added when needed) and the submodel's side."""

    end: Endpoint
    sub: TensorAddress  # the submodel's own tensor (top level, as its config names it)
    layer: str  # the submodel layer name (an input's feed key)

    @property
    def name(self) -> str:
        return self.end.name

    @property
    def source(self) -> str:
        return self.end.source

    @property
    def role(self) -> Role:
        return self.end.role

    @property
    def parent(self) -> TensorAddress:
        """The parent's tensor (its one real producer)."""
        return self.end.parent


@dataclass
class Correspondence:
    inputs: list[Link]
    outputs: list[Link]
    layers: dict[str, str]  # submodel top-level layer name -> parent layer path

    def parent_path(self, sub_path: str) -> str | None:
        """The parent path of a submodel layer path ("backbone/conv" inside a kept model)."""
        head, sep, rest = sub_path.partition("/")
        base = self.layers.get(head)
        return None if base is None else base + sep + rest


def correspond(parent: FlatGraph, sub: FlatGraph, record: dict[str, Any] | None,
               sub_path: Path) -> Correspondence:
    """Tie every submodel input, output and layer to the parent; error if one cannot be."""
    entries = _record_entries(record, sub)
    layers = _layer_map(parent, sub, record, sub_path)
    inputs = []
    names = endpoint_names(sub, sub.top.inputs)
    for i, ref in enumerate(sub.top.inputs):
        t = TensorAddress((), ref.layer, ref.call, ref.index)
        entry = entries[0][i] if entries else None
        source, tensor, role = _input_source(parent, t, entry, layers, sub_path)
        inputs.append(Link(Endpoint(names[i], source, role, tensor), t, ref.layer))
    outputs = []
    names = endpoint_names(sub, sub.top.outputs)
    for i, ref in enumerate(sub.top.outputs):
        t = TensorAddress((), ref.layer, ref.call, ref.index)
        entry = entries[1][i] if entries else None
        if entry is not None:
            source, tensor = _recorded(parent, entry, names[i], "output", sub_path)
        else:
            source, tensor = _by_layer_name(parent, sub, t, layers, sub_path, "output")
        outputs.append(Link(Endpoint(names[i], source, Role.OUTPUT, tensor), t, ref.layer))
    return Correspondence(inputs, outputs, layers)


def endpoint_names(sub: FlatGraph, refs: list[Any]) -> list[str]:
    names = []
    for ref in refs:
        same = [r for r in refs if r.layer == ref.layer]
        name = ref.layer
        if len({r.call for r in same}) > 1:
            name += f"@{ref.call}"
        if len(same) > 1 and len(sub.top.by_name[ref.layer].calls[ref.call].outputs) > 1:
            name += f"[{ref.index}]"
        names.append(name)
    return names


# --- the record cut writes -------------------------------------------------------------------


def _record_entries(record: dict[str, Any] | None, sub: FlatGraph
                    ) -> tuple[list[dict], list[dict]] | None:
    """The record's input and output entries when they describe exactly this submodel's
    inputs and outputs, in order; else None (match by name). Read as untrusted data."""
    if not isinstance(record, dict):
        return None
    ins, outs = record.get("inputs"), record.get("outputs")
    if not isinstance(ins, list) or not isinstance(outs, list):
        return None
    if not all(isinstance(e, dict) and isinstance(e.get("source"), str) for e in ins + outs):
        return None
    if [e.get("name") for e in ins] != [r.layer for r in sub.top.inputs] or \
            [e.get("name") for e in outs] != [r.layer for r in sub.top.outputs]:
        return None
    return ins, outs


def _recorded(parent: FlatGraph, entry: dict[str, Any], name: str, what: str,
              sub_path: Path) -> tuple[str, TensorAddress]:
    source = entry["source"]
    if "tensor" in entry:
        wanted = tensor_from_json(entry["tensor"])
        tensor = parent.find_tensor(wanted) if wanted is not None else None
        if tensor is None:
            raise CutError(f"{sub_path}: {what} {name!r} stands for {source!r}, a tensor the "
                           "parent does not have; is this submodel cut from this parent?")
        return source, tensor
    return source, _by_label(parent, source, 0, name, what, sub_path)  # older records


def _input_source(parent: FlatGraph, t: TensorAddress, entry: dict[str, Any] | None,
                  layers: dict[str, str], sub_path: Path) -> tuple[str, TensorAddress, Role]:
    if entry is not None:
        source, tensor = _recorded(parent, entry, t.layer, "input", sub_path)
        role = Role(entry["kind"]) if entry.get("kind") in INPUT_ROLES else Role.CUT_INPUT
        if tensor in parent.parent_inputs:
            role = Role.PARENT_INPUT
        return source, tensor, role
    for ref, tensor in zip(parent.top.inputs, parent.parent_inputs, strict=False):
        if ref.layer == t.layer:
            return t.layer, tensor, Role.PARENT_INPUT
    base, call, index = t.layer, None, None
    candidates = [p for p in parent.top.all_paths() if p.rsplit("/", 1)[-1] == base]
    match = re.fullmatch(r"(.*?)(?:_call(\d+))?(?:_(\d+))?", t.layer)
    if not candidates and match:  # the names cut gives inputs: NAME_callN, NAME_i
        base, call, index = match.group(1), match.group(2), match.group(3)
        candidates = [p for p in parent.top.all_paths() if p.rsplit("/", 1)[-1] == base]
    if len(candidates) != 1:
        why = "no layer" if not candidates else f"several layers ({', '.join(candidates)})"
        raise CutError(
            f"{sub_path}: input {t.layer!r} matches {why} of the parent by name, and the file "
            "carries no keras-cut record saying which; is it cut from this parent?"
        )
    label = candidates[0] + (f"@{call}" if call is not None else "")
    tensor = _by_label(parent, label, int(index or 0), t.layer, "input", sub_path)
    return label, tensor, Role.CUT_INPUT


def _by_label(parent: FlatGraph, label: str, index: int, name: str, what: str,
              sub_path: Path) -> TensorAddress:
    """The parent tensor a label such as `lstm[1]` or `shared@1` names (the one name parser;
    `index` when the label gives no `[i]`)."""
    try:
        node, chosen = parent.resolve_outputs(label, f"{what} {name!r}")
    except LayerNameError as exc:
        raise CutError(
            f"{sub_path}: {what} {name!r} stands for parent layer {label!r}, which the parent "
            "does not have (or not unambiguously); is this submodel cut from this parent?"
        ) from exc
    outs = parent.outputs_of(node)
    index = chosen[0] if len(chosen) == 1 else index
    if index >= len(outs):
        raise CutError(f"{sub_path}: {what} {name!r} names output {index} of {label!r}, "
                       f"which has {len(outs)}")
    return outs[index]


def _by_layer_name(parent: FlatGraph, sub: FlatGraph, t: TensorAddress, layers: dict[str, str],
                   sub_path: Path, what: str) -> tuple[str, TensorAddress]:
    """An output of a file without a record: the parent layer of the same name, whose one call
    must be meant (several calls cannot be told apart without the record)."""
    path = layers.get(t.layer)
    if path is None:  # an output that is an input layer
        for ref, tensor in zip(parent.top.inputs, parent.parent_inputs, strict=False):
            if ref.layer == t.layer:
                return t.layer, tensor
        raise CutError(f"{sub_path}: {what} {t.layer!r} has no counterpart in the parent")
    try:
        node = parent.resolve(path, f"{what} {t.layer!r}")
    except LayerNameError as exc:
        raise CutError(
            f"{sub_path}: {what} {t.layer!r} is parent layer {path!r}, which is called several "
            "times, and the file carries no keras-cut record saying which call; cut it again "
            "with keras-cut"
        ) from exc
    outs = parent.outputs_of(node)
    if t.index >= len(outs):
        raise CutError(f"{sub_path}: {what} {t.layer!r} is output {t.index} of parent layer "
                       f"{path!r}, which has {len(outs)}")
    label = parent.label(node) + (f"[{t.index}]" if len(outs) > 1 else "")
    return label, outs[t.index]


# --- layers ----------------------------------------------------------------------------------


def _layer_map(parent: FlatGraph, sub: FlatGraph, record: dict[str, Any] | None,
               sub_path: Path) -> dict[str, str]:
    """Submodel top-level layer name -> parent layer path, for every non-input layer; every
    layer inside a nested model kept whole must exist at the same place in the parent."""
    paths = set(parent.top.all_paths())
    recorded = record.get("layers") if isinstance(record, dict) else None
    renamed = record.get("renamed") if isinstance(record, dict) else None
    back = {v: k for k, v in renamed.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(renamed, dict) else {}
    by_leaf: dict[str, list[str]] = {}
    for p in paths:
        by_leaf.setdefault(p.rsplit("/", 1)[-1], []).append(p)
    layers: dict[str, str] = {}
    for layer in sub.top.layers:
        if layer.is_input:
            continue
        source = recorded.get(layer.name) if isinstance(recorded, dict) else None
        if not isinstance(source, str):
            source = back.get(layer.name)
        if source is None and layer.name in parent.top.by_name:
            source = layer.name  # the same name at the top level: the exact path
        if source is None:
            candidates = by_leaf.get(layer.name, [])
            if len(candidates) != 1:
                why = "no layer" if not candidates else \
                    f"several layers ({', '.join(sorted(candidates))})"
                raise CutError(
                    f"{sub_path}: layer {layer.name!r} ({layer.class_name}) matches {why} of "
                    "the parent by name; is this submodel cut from this parent?"
                )
            source = candidates[0]
        if source not in paths:
            raise CutError(f"{sub_path}: layer {layer.name!r} stands for parent layer "
                           f"{source!r}, which the parent does not have; is this submodel cut "
                           "from this parent?")
        layers[layer.name] = source
    for _, layer, _ in sub.top.walk():
        head, sep, rest = layer.path.partition("/")
        if sep and not layer.is_input and layers.get(head, "") + "/" + rest not in paths:
            raise CutError(f"{sub_path}: layer {layer.path!r} ({layer.class_name}) has no "
                           "counterpart in the parent; is this submodel cut from this parent?")
    return layers


# --- every activation, for the divergence report ---------------------------------------------


@dataclass
class CallMatch:
    """A submodel layer call and the parent call it stands for: its output tensors paired
    with the parent's, or (`problem`) why no parent call reads what it reads."""

    node: CallAddress
    pairs: list[tuple[TensorAddress, TensorAddress]]
    parent: CallAddress | None = None
    problem: str = ""


def match_calls(parent: FlatGraph, sub: FlatGraph, links: Correspondence) -> list[CallMatch]:
    """Every submodel layer call whose inputs are known parent tensors, in graph order,
    matched from the inputs forward: a call pairs with the call of its parent layer that
    reads the same parent tensors. A call of a layer that reads other tensors than any call of
    its parent layer is returned with the problem (wiring that differs); calls downstream of
    it cannot be paired and are left out."""
    tensors: dict[TensorAddress, TensorAddress] = {sub.canonical(link.sub): link.parent
                                             for link in links.inputs}
    calls: dict[str, list[CallAddress]] = {}
    for node in parent.nodes:
        calls.setdefault(parent.path(node), []).append(node)
    matches = []
    for node in sub.nodes:
        ins = [tensors.get(t) for t in sub.inputs_of(node)]
        path = links.parent_path(sub.path(node))
        if None in ins or path is None:
            continue
        candidates = [c for c in calls.get(path, []) if parent.inputs_of(c) == ins]
        if len(candidates) != 1:
            reads = ", ".join(_tensor_label(parent, t) for t in ins if t is not None)
            theirs = "; ".join(", ".join(_tensor_label(parent, t) for t in parent.inputs_of(c))
                               for c in calls.get(path, []))
            matches.append(CallMatch(node, [], None, f"reads {reads or 'nothing'} where the "
                                     f"parent's {path!r} reads {theirs or 'nothing'}"))
            continue
        mine, theirs_out = sub.outputs_of(node), parent.outputs_of(candidates[0])
        if len(mine) != len(theirs_out):
            matches.append(CallMatch(node, [], candidates[0], f"has {len(mine)} outputs, the "
                                     f"parent's {len(theirs_out)}"))
            continue
        tensors.update(zip(mine, theirs_out, strict=False))
        matches.append(CallMatch(node, list(zip(mine, theirs_out, strict=False)), candidates[0]))
    return matches


def _tensor_label(flat: FlatGraph, t: TensorAddress) -> str:
    outs = flat.outputs_of(t.node)
    return flat.label(t.node) + (f"[{t.index}]" if len(outs) > 1 else "")
