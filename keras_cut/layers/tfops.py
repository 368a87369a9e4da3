"""tf.keras 2's TensorFlow-operation layers (`TFOpLambda`, `SlicingOpLambda`) as Keras 3
operations, without TensorFlow.

tf.keras 2 records `h * 2.0`, `a + q`, `tf.concat([...])`, `x[:, 0:4]` in a functional model as
a layer holding the TF function's name (`math.multiply`) and, per call, the first argument as a
tensor and the others as keyword arguments (constants, or tensors written `[name, node, index]`).
Keras 3 writes a `keras.ops` call in a functional model as an operation layer
(`{"module": "keras.src.ops.numpy", "class_name": "Multiply", ...}`) whose call holds its
arguments. `translate` turns the first into the second for the functions in `TRANSLATIONS`, each
with the same semantics (tested against tf.keras 2's own outputs); anything else (an unknown
function, an argument the Keras op has no equivalent for) is left as it is and reported, never
approximated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keras_cut.core.jsonvalues import as_dict

NUMPY, NN, CORE = "keras.src.ops.numpy", "keras.src.ops.nn", "keras.src.ops.core"
PLACEHOLDER = "keras_cut_placeholder"  # a tensor's recorded shape that means nothing
TRANSLATED_FROM = "keras_cut_translated_from"  # on a layer: the tf.keras 2 function it was
# on a layer: why Keras 3 would compute something else than tf.keras 2 from its config
LEGACY_SEMANTICS = "keras_cut_legacy_semantics"


@dataclass(frozen=True)
class Op:
    module: str
    class_name: str
    # TF keyword arguments that become further call arguments, in order (`y` of tf.add -> x2)
    operands: tuple[str, ...] = ()
    # TF keyword arguments that become the op's config: TF name -> Keras name
    settings: dict[str, str] = field(default_factory=dict)
    # TF keyword arguments that may be present with this value only (no effect)
    ignored: dict[str, Any] = field(default_factory=dict)
    list_input: bool = False  # the first argument is a list of tensors (concat, stack)


_BINARY = {"name": None}
TRANSLATIONS: dict[str, Op] = {
    **{f: Op(NUMPY, "Add", ("y",), ignored=_BINARY) for f in ("__operators__.add", "math.add")},
    "math.subtract": Op(NUMPY, "Subtract", ("y",), ignored=_BINARY),
    "math.multiply": Op(NUMPY, "Multiply", ("y",), ignored=_BINARY),
    **{f: Op(NUMPY, "TrueDivide", ("y",), ignored=_BINARY)
       for f in ("math.truediv", "math.divide")},
    "math.maximum": Op(NUMPY, "Maximum", ("y",), ignored=_BINARY),
    "math.minimum": Op(NUMPY, "Minimum", ("y",), ignored=_BINARY),
    "math.pow": Op(NUMPY, "Power", ("y",), ignored=_BINARY),
    **{f"math.reduce_{kind}": Op(NUMPY, cls, settings={"axis": "axis", "keepdims": "keepdims"},
                                 ignored={"name": None})
       for kind, cls in (("mean", "Mean"), ("sum", "Sum"), ("max", "Max"), ("min", "Min"))},
    "concat": Op(NUMPY, "Concatenate", settings={"axis": "axis"}, ignored={"name": "concat"},
                 list_input=True),
    "stack": Op(NUMPY, "Stack", settings={"axis": "axis"}, ignored={"name": "stack"},
                list_input=True),
    "reshape": Op(NUMPY, "Reshape", settings={"shape": "newshape"}, ignored={"name": None}),
    **{f: Op(NUMPY, "Transpose", settings={"perm": "axes"},
             ignored={"name": "transpose", "conjugate": False})
       for f in ("transpose", "compat.v1.transpose")},
    "expand_dims": Op(NUMPY, "ExpandDims", settings={"axis": "axis"}, ignored={"name": None}),
    **{f: Op(NUMPY, "Squeeze", settings={"axis": "axis"}, ignored={"name": None})
       for f in ("squeeze", "compat.v1.squeeze")},
    "linalg.matmul": Op(NUMPY, "Matmul", ("b",), ignored={
        "name": None, "transpose_a": False, "transpose_b": False, "adjoint_a": False,
        "adjoint_b": False, "a_is_sparse": False, "b_is_sparse": False, "output_type": None}),
    "cast": Op(CORE, "Cast", settings={"dtype": "dtype"}, ignored={"name": None}),
    "nn.relu": Op(NN, "Relu", ignored={"name": None}),
    "nn.relu6": Op(NN, "Relu6", ignored={"name": None}),
    **{f: Op(NN, "Sigmoid", ignored={"name": None}) for f in ("math.sigmoid", "nn.sigmoid")},
    **{f: Op(NUMPY, "Tanh", ignored={"name": None}) for f in ("math.tanh", "nn.tanh")},
    "nn.softmax": Op(NN, "Softmax", settings={"axis": "axis"}, ignored={"name": None}),
    "math.sqrt": Op(NUMPY, "Sqrt", ignored={"name": None}),
    "math.exp": Op(NUMPY, "Exp", ignored={"name": None}),
    "math.log": Op(NUMPY, "Log", ignored={"name": None}),
    "math.square": Op(NUMPY, "Square", ignored={"name": None}),
    "math.abs": Op(NUMPY, "Absolute", ignored={"name": None}),
    "__operators__.getitem": Op(NUMPY, "GetItem"),
}


class Untranslatable(ValueError):
    """Why a TF-op layer stays as it is (an unknown function or argument)."""


CONSTANT = "_CONSTANT_VALUE"


def is_constant_entry(item: Any) -> bool:
    """tf.keras 2's entry for a constant first argument of a TF operation (`2.0 - h` is
    `tf.math.subtract(2.0, y=h)`): `["_CONSTANT_VALUE", -1, 2.0, {kwargs}]`."""
    return isinstance(item, list) and len(item) >= 3 and item[0] == CONSTANT and item[1] == -1


def is_tf_op(layer: dict[str, Any]) -> bool:
    return layer.get("class_name") in ("TFOpLambda", "SlicingOpLambda")


def translate(layer: dict[str, Any]) -> dict[str, Any]:
    """The Keras 3 operation layer for a TF-op layer; raise Untranslatable."""
    config = as_dict(layer.get("config"))
    function = str(config.get("function"))
    op = TRANSLATIONS.get(function)
    if op is None:
        raise Untranslatable(f"tf.{function} has no translation to a Keras 3 operation")
    name = str(layer.get("name") or config.get("name"))
    calls = []
    settings: dict[str, Any] | None = None
    for node in layer.get("inbound_nodes") or []:
        args, found = _call(function, op, node)
        if settings is not None and found != settings:
            raise Untranslatable(f"tf.{function} is called with different settings")
        settings = found
        calls.append({"args": args, "kwargs": {}})
    return {"module": op.module, "class_name": op.class_name,
            "config": {"name": name, **(settings or {})}, "registered_name": op.class_name,
            "name": name, "inbound_nodes": calls, TRANSLATED_FROM: f"tf.{function}"}


def _call(function: str, op: Op, node: Any) -> tuple[list[Any], dict[str, Any]]:
    entries = [node] if _is_ref(node) or is_constant_entry(node) else node
    if not isinstance(entries, list) or not entries or not all(
            _is_ref(e) or is_constant_entry(e) for e in entries):
        raise Untranslatable(f"tf.{function}: a call keras-cut cannot read")
    kwargs = entries[0][3] if len(entries[0]) > 3 and isinstance(entries[0][3], dict) else {}
    if is_constant_entry(entries[0]):  # `2.0 - h`: the constant is the first operand
        if len(entries) > 1 or op.list_input or not op.operands or \
                not isinstance(entries[0][2], (int, float)) or isinstance(entries[0][2], bool):
            raise Untranslatable(f"tf.{function}: a constant first argument "
                                 f"{entries[0][2]!r} keras-cut cannot place")
        tensors: list[Any] = [entries[0][2]]
    else:
        tensors = [_tensor(e) for e in entries]
    first: Any = tensors if op.list_input else tensors[0]
    if len(tensors) > 1 and not op.list_input:
        raise Untranslatable(f"tf.{function}: several positional tensors")
    args = [first]
    settings: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in op.operands:
            continue
        if key in op.settings:
            settings[op.settings[key]] = value
        elif key == "slice_spec" and op.class_name == "GetItem":
            args.append(_slices(function, value))
        elif key in op.ignored and value == op.ignored[key]:
            continue
        elif key == "name":
            continue  # a name for the TF op itself: no effect on the values
        else:
            raise Untranslatable(f"tf.{function}: argument {key}={value!r} has no Keras "
                                 "equivalent")
    for key in op.operands:
        if key not in kwargs:
            raise Untranslatable(f"tf.{function}: argument {key!r} is missing")
        value = kwargs[key]
        args.append(_tensor(value) if _is_ref(value) else value)
    if op.class_name == "GetItem" and len(args) != 2:
        raise Untranslatable(f"tf.{function}: no slice")
    return args, settings


def _slices(function: str, spec: Any) -> Any:
    """tf.keras 2's slice_spec (dicts, ints) as Keras 3's serialized index."""
    items = spec if isinstance(spec, list) else [spec]
    out: list[Any] = []
    for item in items:
        if isinstance(item, dict) and set(item) == {"start", "stop", "step"} and all(
                v is None or (isinstance(v, int) and not isinstance(v, bool))
                for v in item.values()):
            out.append({"class_name": "__slice__", "config": dict(item)})
        elif isinstance(item, int) and not isinstance(item, bool):
            out.append(item)
        else:
            raise Untranslatable(f"tf.{function}: index {item!r} (only slices and integers)")
    return out if isinstance(spec, list) else out[0]


def _tensor(entry: list[Any]) -> dict[str, Any]:
    """A reference to another layer's output, as Keras 3 writes it. Keras replaces it by the
    real tensor on load; the shape recorded here means nothing and says so."""
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [], "dtype": "float32", "keras_history": list(entry[:3]),
                       PLACEHOLDER: True}}


def _is_ref(item: Any) -> bool:
    return (isinstance(item, list) and len(item) >= 3 and isinstance(item[0], str)
            and isinstance(item[1], int) and not isinstance(item[1], bool)
            and isinstance(item[2], int) and not isinstance(item[2], bool))
