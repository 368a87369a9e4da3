"""Multiply-accumulates of common Keras layers, per sample and per call, from config and shapes;
`known_layers` says which class uses which rule. The conventions are the README's ("What a
model costs"):

- a MAC is one multiply and one add of a product into a sum: a matmul of (m, k) by (k, n) is
  m·k·n MACs; published "FLOPs" of CNNs usually mean these MACs (TensorFlow's profiler counts
  2 floating-point operations per MAC);
- bias adds, activations, normalisation, pooling and element-wise merges are not MACs (0);
  their cost is memory traffic, which the activation-memory column shows;
- a shape with an unknown dimension (other than the batch) gives None, shown as `?`: never a
  guessed number.

Every rule takes (config, input shapes, output shapes, stored weight shapes by name) with the
batch dimension first, and returns MACs for one sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from keras_cut.layers.shapes import Shape, split_channels, tuple_of

Weights = dict[str, tuple[int, ...]]
MacsRule = Callable[[dict[str, Any], list[Shape], list[Shape], Weights], "int | None"]


def per_sample(shape: Shape | None) -> int | None:
    """Elements of one sample of a tensor (the batch dimension dropped); None if unknown."""
    if shape is None or not all(type(d) is int for d in shape[1:]):  # untrusted: ints only
        return None
    return math.prod(shape[1:])  # type: ignore[arg-type]


def _prod(values: Sequence[int | None]) -> int | None:
    return None if any(v is None for v in values) else math.prod(values)  # type: ignore[arg-type]


def none(config: dict[str, Any], inputs: list[Shape], outputs: list[Shape],
         weights: Weights) -> int:
    """Layers without multiply-accumulates (activations, pooling, reshapes, merges, ...)."""
    return 0


def dense(config: dict[str, Any], inputs: list[Shape], outputs: list[Shape],
          weights: Weights) -> int | None:
    """Every input vector (along the last axis) times the kernel: N-D inputs count each row."""
    rows = per_sample(inputs[0])
    return None if rows is None else rows * int(config["units"])


def conv(config: dict[str, Any], inputs: list[Shape], outputs: list[Shape],
         weights: Weights) -> int | None:
    """Each output element: kernel window × input channels of its group."""
    in_channels, _, _ = split_channels(config, inputs[0])
    out = per_sample(outputs[0])
    if in_channels is None or out is None:
        return None
    rank = len(inputs[0]) - 2
    window = math.prod(tuple_of(config["kernel_size"], rank))
    return out * window * (in_channels // int(config.get("groups") or 1))


def depthwise(config: dict[str, Any], inputs: list[Shape], outputs: list[Shape],
              weights: Weights) -> int | None:
    """Each output element (channel × multiplier): one kernel window of one input channel."""
    out = per_sample(outputs[0])
    if out is None:
        return None
    return out * math.prod(tuple_of(config["kernel_size"], len(inputs[0]) - 2))


def separable(config: dict[str, Any], inputs: list[Shape], outputs: list[Shape],
              weights: Weights) -> int | None:
    """The depthwise step at the output's resolution, then the 1×1 pointwise step."""
    in_channels, _, _ = split_channels(config, inputs[0])
    _, spatial, _ = split_channels(config, outputs[0])
    positions = _prod(list(spatial))
    if in_channels is None or positions is None:
        return None
    rank = len(inputs[0]) - 2
    middle = in_channels * int(config.get("depth_multiplier", 1))
    window = math.prod(tuple_of(config["kernel_size"], rank))
    return positions * middle * window + positions * middle * int(config["filters"])


def transposed(config: dict[str, Any], inputs: list[Shape], outputs: list[Shape],
               weights: Weights) -> int | None:
    """Each input element scatters into a kernel window of every filter (counted at the input,
    as TensorFlow's profiler and fvcore do)."""
    size = per_sample(inputs[0])
    if size is None:
        return None
    rank = len(inputs[0]) - 2
    return size * math.prod(tuple_of(config["kernel_size"], rank)) * int(config["filters"])


def einsum_dense(config: dict[str, Any], inputs: list[Shape], outputs: list[Shape],
                 weights: Weights) -> int | None:
    """Each output element: the product of the contracted dimensions (read off the kernel)."""
    equation = str(config["equation"]).replace(" ", "")
    lhs, out_letters = equation.split("->")
    left, kernel_letters = lhs.split(",")
    kernel = weights.get("kernel")
    out = per_sample(outputs[0])
    if kernel is None or out is None or "." in kernel_letters or \
            len(kernel_letters) != len(kernel):
        return None
    contracted = (set(left) & set(kernel_letters)) - set(out_letters)
    sizes = dict(zip(kernel_letters, kernel, strict=False))
    return out * math.prod(sizes[c] for c in contracted)


def recurrent(gates: int) -> MacsRule:
    """Per step, each gate: input × units and units × units; times the steps."""

    def rule(config: dict[str, Any], inputs: list[Shape], outputs: list[Shape],
             weights: Weights) -> int | None:
        shape = inputs[0]
        if len(shape) != 3 or shape[1] is None or shape[2] is None:
            return None
        units = int(config["units"])
        return shape[1] * gates * (shape[2] * units + units * units)

    return rule


def multi_head_attention(config: dict[str, Any], inputs: list[Shape], outputs: list[Shape],
                         weights: Weights) -> int | None:
    """Projections of query, key and value, the scores (QK^T), the weighted sum of the values,
    and the output projection."""
    query = _declared(config.get("query_shape")) or (inputs[0] if inputs else None)
    value = _declared(config.get("value_shape")) or (inputs[1] if len(inputs) > 1 else query)
    key = _declared(config.get("key_shape")) or value
    if query is None or value is None or key is None:
        return None
    lengths = [_prod(list(s[1:-1])) for s in (query, key, value)]
    # the widths each projection reads, from its stored kernel where the file has it (a key
    # passed as its own tensor can be narrower than the value)
    widths = [_projection_width(weights, part) or s[-1]
              for part, s in (("query", query), ("key", key), ("value", value))]
    known = [n for n in lengths + widths if n is not None]
    if len(known) < 6:
        return None
    tq, tk, tv, *dims = known
    heads, key_dim = int(config["num_heads"]), int(config["key_dim"])
    value_dim = int(config.get("value_dim") or key_dim)
    out = config.get("output_shape")
    out_dim = query[-1] if out is None else (out if isinstance(out, int) else math.prod(out))
    attended = _attended(config.get("attention_axes"), key)  # key positions each query sees
    if out_dim is None or attended is None:
        return None
    return (tq * dims[0] * heads * key_dim + tk * dims[1] * heads * key_dim
            + tv * dims[2] * heads * value_dim + tq * attended * heads * key_dim
            + tq * attended * heads * value_dim + tq * heads * value_dim * out_dim)


def _attended(axes: Any, key: Shape) -> int | None:
    """How many key positions one query position is scored against: every inner position of
    the key, or with `attention_axes` only those along them (the other axes are batched)."""
    inner = list(range(1, len(key) - 1))
    if axes is None:
        chosen = inner
    else:
        listed = [axes] if isinstance(axes, int) else list(axes)
        if not all(isinstance(a, int) and not isinstance(a, bool) for a in listed):
            return None
        chosen = sorted({a % len(key) for a in listed})
        if not set(chosen) <= set(inner):
            return None
    return _prod([key[a] for a in chosen])


def _projection_width(weights: Weights, part: str) -> int | None:
    """The input width of MultiHeadAttention's `part` projection: its kernel's first dimension
    (`.keras`: `key_dense/vars/0`; tf.keras 2: `key/kernel`)."""
    for name, shape in weights.items():
        segments = name.split("/")
        if segments[0] in (f"{part}_dense", part) and len(shape) == 3 and (
                segments[-1] in ("kernel", "0")):
            return int(shape[0])
    return None


def dot(config: dict[str, Any], inputs: list[Shape], outputs: list[Shape],
        weights: Weights) -> int | None:
    """`Dot`: each output element sums the products along the contracted axis."""
    if len(inputs) != 2 or not outputs:
        return None
    axes = config.get("axes", -1)
    first = inputs[0]
    axis = axes[0] if isinstance(axes, (list, tuple)) else axes
    if not isinstance(axis, int) or not -len(first) <= axis < len(first):
        return None
    out, size = per_sample(outputs[0]), first[axis]
    return None if out is None or size is None else out * size


def dot_attention(config: dict[str, Any], inputs: list[Shape], outputs: list[Shape],
                  weights: Weights) -> int | None:
    """`Attention`: scores (query · key) and the weighted sum of the values."""
    if len(inputs) < 2:
        return None
    query, value = inputs[0], inputs[1]
    if len(query) != 3 or len(value) != 3:
        return None
    tq, dq, tv, dv = query[1], query[2], value[1], value[2]
    if tq is None or dq is None or tv is None or dv is None:
        return None
    return tq * tv * dq + tq * tv * dv


def _declared(value: Any) -> Shape | None:
    if isinstance(value, (list, tuple)) and all(d is None or isinstance(d, int) for d in value):
        return tuple(value)
    return None
