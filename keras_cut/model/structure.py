"""What a submodel is made of, proven equal to its parent's, from both files without
TensorFlow: every kept layer's serialized form, every kept call's wiring and arguments, every
input's shape and dtype.

Seeded inputs in [-1, 1) never reach some differences (a `relu` that became `relu6`, an
epsilon moved by 1e-7), so verify does not rely on outputs alone. A cut copies each kept layer's
serialized form verbatim and changes only what this module puts aside: the layer's name (a
rename), its calls' tensors (rewired; the wiring is proven separately, call by call from the
inputs), `trainable` where the record says the cut froze it, and a tf.keras 2 call written in
Keras 3's form (both forms are read as the arguments Keras passes). Anything else that differs —
a config field, a dtype policy, `module`/`registered_name`, a call argument such as
`training=True` or `use_causal_mask=True`, a call reading other tensors — is a mismatch naming
the layer and the field.

The parent's side is a `ParentStructure`: built from the parent's graph, or read back from a
golden file, which stores it so that a submodel can be checked without the parent.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from keras_cut.core.address import TensorAddress
from keras_cut.core.packages import is_keras_module
from keras_cut.layers.known import is_training_only
from keras_cut.layers.tfops import is_constant_entry
from keras_cut.model.endpoint import tensor_json
from keras_cut.model.flatgraph import FlatGraph
from keras_cut.model.graph import parse_history

TENSOR = "<tensor>"  # where a call passes a tensor (wiring is compared apart)
MAX_VALUE = 60  # characters of a config value quoted in a message


@dataclass
class ConfigCheck:
    """The submodel's layers, calls and inputs against the parent's (or a golden file's)."""

    layers: int = 0  # layer configs compared
    calls: int = 0  # layer calls compared (wiring and arguments)
    mismatched: list[str] = field(default_factory=list)
    # differences in what only training uses (a Dropout rate, an initializer): reported, and
    # no failure, since inference computes the same
    training_only: list[str] = field(default_factory=list)
    against: str = "parent"  # or "golden file"

    @property
    def passed(self) -> bool:
        return not self.mismatched

    def to_dict(self) -> dict[str, Any]:
        return {"layers": self.layers, "calls": self.calls, "mismatched": self.mismatched,
                "training_only": self.training_only, "against": self.against}


@dataclass
class ParentCall:
    """One call of a parent layer: the tensors it reads and makes, and its other arguments."""

    label: str  # as a user names it: "shared@1", "backbone/conv"
    inputs: list[str]  # tensor keys (`tensor_key`)
    outputs: list[str]
    arguments: Any  # `call_arguments` of the call

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "inputs": self.inputs, "outputs": self.outputs,
                "arguments": self.arguments}


@dataclass
class ParentStructure:
    """What the kept part of the parent is: per layer path its serialized form
    (`layer_form`) and its calls; the tensors the submodel's inputs and outputs stand for,
    with each input's shape and dtype."""

    layers: dict[str, Any]
    calls: dict[str, list[ParentCall]]
    inputs: list[dict[str, Any]]  # {"tensor": key, "shape": [...] | None, "dtype": str | None}
    outputs: list[str]
    assets: dict[str, dict[str, str]]  # layer path -> {file name: SHA-256} (`save_assets`)

    def to_dict(self) -> dict[str, Any]:
        return {"layers": self.layers,
                "calls": {p: [c.to_dict() for c in calls] for p, calls in self.calls.items()},
                "inputs": self.inputs, "outputs": self.outputs, "assets": self.assets}

    @classmethod
    def from_dict(cls, value: Any) -> ParentStructure:
        """From a golden file (untrusted): a ValueError names what is malformed."""
        if not isinstance(value, dict):
            raise ValueError("structure is not an object")
        layers, calls = value.get("layers"), value.get("calls")
        inputs, outputs = value.get("inputs"), value.get("outputs")
        if not isinstance(layers, dict) or not isinstance(calls, dict):
            raise ValueError("structure.layers/calls are not objects")
        if not isinstance(inputs, list) or not all(_input_spec(i) for i in inputs):
            raise ValueError("structure.inputs is malformed")
        if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
            raise ValueError("structure.outputs is malformed")
        table: dict[str, list[ParentCall]] = {}
        for path, entries in calls.items():
            if not isinstance(entries, list):
                raise ValueError(f"structure.calls[{path!r}] is not a list")
            table[str(path)] = [_parent_call(e) for e in entries]
        assets = value.get("assets")
        if not isinstance(assets, dict) or not all(
                isinstance(files, dict) and all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in files.items())
                for files in assets.values()):
            raise ValueError("structure.assets is malformed")
        return cls(dict(layers), table, inputs, outputs, assets)


def _input_spec(value: Any) -> bool:
    """{"tensor": key, "shape": [dims] | None, "dtype": str | None}, dims ints >= 0 or None."""
    if not isinstance(value, dict) or not isinstance(value.get("tensor"), str):
        return False
    shape, dtype = value.get("shape"), value.get("dtype")
    dims_ok = shape is None or isinstance(shape, list) and all(
        d is None or isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    return dims_ok and (dtype is None or isinstance(dtype, str))


def _parent_call(entry: Any) -> ParentCall:
    ok = isinstance(entry, dict) and isinstance(entry.get("label"), str) and all(
        isinstance(entry.get(k), list) and all(isinstance(t, str) for t in entry[k])
        for k in ("inputs", "outputs"))
    if not ok:
        raise ValueError("a structure.calls entry is malformed")
    return ParentCall(entry["label"], entry["inputs"], entry["outputs"], entry.get("arguments"))


def tensor_key(t: TensorAddress) -> str:
    """One string per parent tensor (its chain of calls and output index)."""
    return json.dumps(tensor_json(t), separators=(",", ":"))


# --- the parent's side -------------------------------------------------------------------------


def parent_structure(parent: FlatGraph, paths: set[str], inputs: list[TensorAddress],
                     outputs: list[TensorAddress], assets: dict[str, dict[str, str]]
                     ) -> ParentStructure:
    """The parent's layers at `paths` (the ones a submodel keeps), all their calls and their
    assets (`assets`: the parent's, by layer path)."""
    layers = {}
    for _, layer, _ in parent.top.walk():
        if layer.path in paths:
            layers[layer.path] = layer_form(layer.raw)
    calls: dict[str, list[ParentCall]] = {}
    for node in parent.nodes:
        path = parent.path(node)
        if path in paths:
            data = parent.layer(node).calls[node.call].data
            calls.setdefault(path, []).append(ParentCall(
                parent.label(node), [tensor_key(t) for t in parent.inputs_of(node)],
                [tensor_key(t) for t in parent.outputs_of(node)], call_arguments(data)))
    specs = []
    for t in inputs:
        shape, dtype = parent.shape_dtype(t)
        specs.append({"tensor": tensor_key(t), "shape": _dims(shape), "dtype": dtype})
    return ParentStructure(layers, calls, specs, [tensor_key(t) for t in outputs],
                           {p: files for p, files in assets.items() if p in paths})


# --- the check ---------------------------------------------------------------------------------


def check_structure(sub: FlatGraph, parent_path: Any, parent: ParentStructure, frozen: bool,
                    assets: dict[str, dict[str, str]], against: str = "parent") -> ConfigCheck:
    """Every submodel layer (with its `assets`, by layer path), call and input against the
    parent's. `parent_path(sub_path)` gives the parent layer path a submodel layer stands for
    (None: none)."""
    check = ConfigCheck(against=against)
    _check_inputs(sub, parent, check)
    _check_layers(sub, parent_path, parent, frozen, check)
    _check_assets(assets, parent_path, parent, check)
    _check_calls(sub, parent_path, parent, check)
    return check


def _check_inputs(sub: FlatGraph, parent: ParentStructure, check: ConfigCheck) -> None:
    if len(sub.top.inputs) != len(parent.inputs):
        check.mismatched.append(f"the submodel has {len(sub.top.inputs)} inputs, the "
                                f"{check.against} {len(parent.inputs)}")
        return
    for ref, spec in zip(sub.top.inputs, parent.inputs, strict=True):
        shape, dtype = sub.shape_dtype(TensorAddress((), ref.layer, ref.call, ref.index))
        declared = canonical(sub.top.by_name[ref.layer].config.get("dtype"))
        dtype = declared if isinstance(declared, str) else dtype  # what Keras builds it with
        mine, theirs = _dims(shape), spec.get("shape")
        if mine is not None and theirs is not None and not _same_dims(mine, theirs):
            check.mismatched.append(f"input {ref.layer}: shape {_shape(mine)}, the "
                                    f"{check.against}'s {_shape(theirs)}")
        if dtype and spec.get("dtype") and dtype != spec["dtype"]:
            check.mismatched.append(f"input {ref.layer}: dtype {dtype}, the {check.against}'s "
                                    f"{spec['dtype']}")


def _check_layers(sub: FlatGraph, parent_path: Any, parent: ParentStructure, frozen: bool,
                  check: ConfigCheck) -> None:
    for _, layer, graph in sub.top.walk():
        if layer.is_input and graph is sub.top:
            continue  # the submodel's own inputs: `_check_inputs`
        source = parent_path(layer.path)
        if source is None or source not in parent.layers:
            check.mismatched.append(f"{layer.path}: no parent layer {source or layer.path!r}")
            continue
        check.layers += 1
        mine, theirs = layer_form(layer.raw), copy.deepcopy(parent.layers[source])
        if frozen:  # the cut set `trainable: false` everywhere
            _drop_trainable(mine)
            _drop_trainable(theirs)
        align_formats(mine, theirs)
        for where, old, new in field_changes(theirs, mine):
            line = f"{layer.path}: {where} is {_quote(new)}, the {check.against}'s {_quote(old)}"
            top, _, rest = where.partition(".")
            if top == "config" and is_training_only(layer.class_name, rest.split(".")[0]):
                check.training_only.append(line)
            else:
                check.mismatched.append(line)


def _check_assets(assets: dict[str, dict[str, str]], parent_path: Any,
                  parent: ParentStructure, check: ConfigCheck) -> None:
    """The files each layer loads its state from (a vocabulary) must be the parent layer's."""
    mapped = {parent_path(path): (path, files) for path, files in assets.items()}
    for source in sorted(set(parent.assets) | {p for p in mapped if p is not None}):
        path, mine = mapped.get(source, (source, {}))
        theirs = parent.assets.get(source, {})
        for name in sorted(set(mine) | set(theirs)):
            if name not in theirs:
                check.mismatched.append(f"{path}: asset {name!r} is not the {check.against}'s")
            elif name not in mine:
                check.mismatched.append(f"{path}: asset {name!r} of the {check.against} is "
                                        "missing")
            elif mine[name] != theirs[name]:
                check.mismatched.append(f"{path}: asset {name!r} differs from the "
                                        f"{check.against}'s (SHA-256)")


def _check_calls(sub: FlatGraph, parent_path: Any, parent: ParentStructure,
                 check: ConfigCheck) -> None:
    """From the inputs forward, each submodel call must be a call of its parent layer that
    reads the parent tensors the submodel's tensors stand for, with the same arguments; each
    output must then be the parent tensor it is said to be.

    A submodel tensor stands for a set of parent tensors: calls of one layer on the same
    tensors with the same arguments compute the same values (a Dense applied twice to one
    input), so either of their outputs is what the submodel's call computes."""
    against = check.against
    stands_for: dict[TensorAddress, frozenset[str]] = {}
    for ref, spec in zip(sub.top.inputs, parent.inputs, strict=False):
        stands_for[sub.canonical(TensorAddress((), ref.layer, ref.call, ref.index))] = \
            frozenset([spec["tensor"]])
    for node in sub.nodes:
        label = sub.label(node)
        ins = [stands_for.get(t) for t in sub.inputs_of(node)]
        path = parent_path(sub.path(node))
        if any(s is None for s in ins):
            check.mismatched.append(f"{label}: reads a tensor that stands for nothing in the "
                                    f"{against}")
            continue
        found = [c for c in parent.calls.get(path or "", []) if len(c.inputs) == len(ins)
                 and all(key in keys for key, keys in zip(c.inputs, ins, strict=True)
                         if keys is not None)]
        if not found:
            check.mismatched.append(f"{label}: wired differently from the {against}'s "
                                    f"{path or sub.path(node)!r} (it reads other tensors)")
            continue
        check.calls += 1
        mine = call_arguments(sub.layer(node).calls[node.call].data)
        same = [c for c in found if not field_changes(c.arguments, mine)]
        for where, old, new in [] if same else field_changes(found[0].arguments, mine):
            check.mismatched.append(f"{label}: call argument {where or 'list'} is "
                                    f"{_quote(new)}, the {against}'s {_quote(old)} "
                                    f"({found[0].label})")
        chosen = same or found[:1]
        outs = sub.outputs_of(node)
        if len(outs) != len(chosen[0].outputs):
            check.mismatched.append(f"{label}: {len(outs)} outputs, the {against}'s "
                                    f"{len(chosen[0].outputs)}")
            continue
        for i, t in enumerate(outs):
            stands_for[t] = frozenset(c.outputs[i] for c in chosen if i < len(c.outputs))
    for i, ref in enumerate(sub.top.outputs):
        got = stands_for.get(sub.canonical(TensorAddress((), ref.layer, ref.call, ref.index)))
        if i >= len(parent.outputs) or got is None or parent.outputs[i] not in got:
            check.mismatched.append(f"output {ref.layer}: is not the {against} tensor it is "
                                    "said to be (taken from another tensor)")
    if len(sub.top.outputs) != len(parent.outputs):
        check.mismatched.append(f"the submodel has {len(sub.top.outputs)} outputs, the "
                                f"{against} {len(parent.outputs)}")


# --- canonical forms ---------------------------------------------------------------------------


def layer_form(raw: dict[str, Any]) -> dict[str, Any]:
    """A serialized layer without what a cut may change: its name and its calls (compared as
    calls); a nested model without its layers (compared one by one); in `canonical` spelling."""
    form = canonical({k: v for k, v in raw.items() if k not in ("name", "inbound_nodes")})
    if "shared_object_id" in raw:  # Keras loads every entry with this id as one object
        form["shared_object_id"] = "(shared with another entry)"
    inner = form.get("config")
    if isinstance(inner, dict):
        inner.pop("name", None)
        if isinstance(inner.get("layers"), list):
            inner.pop("layers")
    return form


# Written by one format and not the other (Keras 3's .keras vs .h5 and tf.keras 2 files): a
# difference only where both sides have them
FORMAT_FIELDS = ("module", "registered_name", "build_config")
DTYPE_POLICIES = ("DTypePolicy", "Policy", "FloatDTypePolicy")
ACTIVATIONS = ("keras.activations", "keras.src.activations", "keras.src.activations.activations")


def canonical(value: Any) -> Any:
    """One spelling for what Keras writes in several ways, everything else as it is: a dtype
    policy object is its name, a serialized activation (`{"class_name": "function",
    "config": "relu", "module": "keras.activations"}`) its name, and the ids Keras numbers
    shared objects inside a config with (`shared_object_id`, which depend on the order of
    saving; a shared dtype policy or initializer computes nothing) are dropped. A layer entry's
    own `shared_object_id` is kept by `layer_form`: it makes Keras load two entries as one
    layer."""
    if isinstance(value, dict):
        inner = value.get("config")
        if value.get("class_name") in DTYPE_POLICIES and isinstance(inner, dict) and \
                isinstance(inner.get("name"), str):
            return inner["name"]
        if value.get("class_name") == "function" and isinstance(inner, str) and \
                value.get("module", ACTIVATIONS[0]) in ACTIVATIONS:
            return inner  # what the name alone resolves to (keras.activations.get)
        return {k: canonical(v) for k, v in value.items() if k != "shared_object_id"}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def align_formats(a: Any, b: Any) -> None:
    """Drop, from both values in place, the FORMAT_FIELDS that only one side writes, where
    the side that writes them says what the other side's absence means: a Keras class
    (`module` keras.*, `registered_name` null or the class name). A custom class whose
    origin one side leaves out resolves to another class: that difference stays."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in FORMAT_FIELDS:
            if (key in a) != (key in b) and (key == "build_config" or (
                    _default_origin(a) and _default_origin(b))):
                a.pop(key, None)
                b.pop(key, None)
        for key in a.keys() & b.keys():
            align_formats(a[key], b[key])
    elif isinstance(a, list) and isinstance(b, list):
        for x, y in zip(a, b, strict=False):
            align_formats(x, y)


def _default_origin(value: dict[str, Any]) -> bool:
    """Whether a serialized object names no origin beyond what its class name gives."""
    module, registered = value.get("module"), value.get("registered_name")
    return (module is None or (isinstance(module, str) and is_keras_module(module))) and \
        registered in (None, value.get("class_name"))


def call_arguments(data: Any) -> Any:
    """What Keras passes a layer call besides the tensors' identity, in one form for a Keras 3
    call (`{"args", "kwargs"}`), a tf.keras 2 one (`[[name, call, index, kwargs], ...]`,
    which Keras 3 calls on the tensor or list of tensors with the kwargs merged) and a
    Sequential's implicit call."""
    if data is None:
        return {"args": [TENSOR], "kwargs": {}}
    if isinstance(data, dict):
        return canonical({"args": _mask(data.get("args", [])),
                          "kwargs": _mask(data.get("kwargs", {}))})
    if isinstance(data, list):
        flat = parse_history(data) is not None or is_constant_entry(data)
        items = [data] if flat else data
        kwargs: dict[str, Any] = {}
        for item in items:
            if isinstance(item, list) and len(item) > 3 and isinstance(item[3], dict):
                kwargs.update(item[3])
        first = [item[2] if is_constant_entry(item) else TENSOR for item in items]
        args = first if len(items) == 1 else [first]
        return canonical({"args": args, "kwargs": _mask(kwargs)})
    return {"unreadable": repr(data)[:200]}


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return TENSOR
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) == 3 and parse_history(value) is not None:  # a tf.keras 2 tensor
            return TENSOR
        return [_mask(v) for v in value]
    return value


def _drop_trainable(value: Any) -> None:
    if isinstance(value, dict):
        value.pop("trainable", None)
        for item in value.values():
            _drop_trainable(item)
    elif isinstance(value, list):
        for item in value:
            _drop_trainable(item)


def flatten(value: Any, prefix: str = "", lists: bool = True) -> Iterator[tuple[str, Any]]:
    """(dotted path, leaf) for every leaf of a JSON value; lists by index (`lists`), or whole
    with `lists=False`, where an empty object is no leaf either."""
    if isinstance(value, dict) and (value or not lists):
        for key, item in value.items():
            yield from flatten(item, f"{prefix}.{key}" if prefix else str(key), lists)
    elif isinstance(value, list) and value and lists:
        for i, item in enumerate(value):
            yield from flatten(item, f"{prefix}.{i}" if prefix else str(i))
    else:
        yield prefix, value


ABSENT = "(absent)"
ALIASES = {"batch_input_shape": "batch_shape"}  # tf.keras 2 spelling -> Keras 3's


def loose_changes(old: Any, new: Any, strict: bool = True) -> list[tuple[str, Any, Any]]:
    """(dotted field, old, new) for each leaf that differs, as `diff` compares configs: in one
    spelling (`canonical`, tf.keras 2's `batch_input_shape` is `batch_shape`), lists shown
    whole, an empty object the same as an absent one, a field only one file format writes no
    difference. An absent field (the constructor's default) and a null one differ unless
    not `strict` (files of two formats, which write defaults differently)."""
    a, b = _aliased(canonical(old)), _aliased(canonical(new))
    align_formats(a, b)
    flat_a, flat_b = dict(flatten(a, lists=False)), dict(flatten(b, lists=False))
    changes = []
    for key in list(flat_a) + [k for k in flat_b if k not in flat_a]:
        o, n = flat_a.get(key, ABSENT), flat_b.get(key, ABSENT)
        if o in (ABSENT, {}) and n in (ABSENT, {}) or \
                not strict and o in (None, ABSENT, {}) and n in (None, ABSENT, {}):
            continue
        if o != n or type(o) is not type(n):
            changes.append((key, o, n))
    return changes


def _aliased(value: Any) -> Any:
    if isinstance(value, dict):
        return {ALIASES.get(k, k): _aliased(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_aliased(v) for v in value]
    return value


def field_changes(old: Any, new: Any) -> list[tuple[str, Any, Any]]:
    """(field, old, new) for every leaf that differs; a field one side lacks is ABSENT. Values
    are compared as JSON writes them (1 and 1.0 and True differ; -0.0 and 0.0 do not)."""
    a, b = dict(flatten(old)), dict(flatten(new))
    changes = []
    for key in list(a) + [k for k in b if k not in a]:
        x, y = a.get(key, ABSENT), b.get(key, ABSENT)
        if key not in a or key not in b or not _same_leaf(x, y):
            changes.append((key, x, y))
    return changes


def _same_leaf(x: Any, y: Any) -> bool:
    return type(x) is type(y) and x == y or (x != x and y != y)  # NaN equals NaN here


def _quote(value: Any) -> str:
    text = value if value is ABSENT else json.dumps(value, default=str)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 3] + "..."


def _dims(shape: Any) -> list[Any] | None:
    return list(shape[1:]) if shape is not None else None


def _same_dims(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y
                                    for x, y in zip(a, b, strict=True))


def _shape(dims: list[Any]) -> str:
    return str(tuple([None, *dims]))
