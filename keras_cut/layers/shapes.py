"""Output-shape rules of common Keras layers, from their config and input shapes, without
Keras; `known_layers` says which class uses which rule.

Used only where the file does not record a shape (a tensor nobody consumes, such as a model
output, or legacy configs that record none). Returning None means "unknown", shown as `?`:
a wrong shape is worse than no shape.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

Dim = int | None
Shape = tuple[Dim, ...]

def as_shape(value: Any) -> Shape | None:
    """A shape as a config records it; None when it is not one. A JSON `true`/`false` is the
    size Keras builds from it (1/0: Python's bool is an int), so that shapes and the weight
    check agree with the model Keras loads."""
    if not isinstance(value, (list, tuple)):
        return None
    dims: list[Dim] = []
    for d in value:
        if d is None:
            dims.append(None)
        elif isinstance(d, int) and d >= 0:
            dims.append(int(d))
        else:
            return None
    return tuple(dims)


def tuple_of(value: Any, rank: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * rank
    value = tuple(value)
    if len(value) != rank:
        raise ValueError("rank mismatch")
    return value


def _channels_last(config: dict[str, Any]) -> bool:
    return config.get("data_format", "channels_last") != "channels_first"


def _conv_len(length: Dim, kernel: int, stride: int, padding: str, dilation: int = 1) -> Dim:
    if length is None:
        return None
    span = (kernel - 1) * dilation + 1
    if padding in ("same", "causal"):
        return math.ceil(length / stride)
    return max((length - span) // stride + 1, 0)


def _deconv_len(length: Dim, kernel: int, stride: int, padding: str, dilation: int,
                out_pad: int | None) -> Dim:
    if length is None:
        return None
    kernel = kernel + (kernel - 1) * (dilation - 1)
    if out_pad is None:
        return length * stride if padding == "same" else length * stride + max(kernel - stride, 0)
    pad = kernel // 2 if padding == "same" else 0
    return (length - 1) * stride + kernel - 2 * pad + out_pad


def split_channels(config: dict[str, Any], shape: Shape) -> tuple[Dim, tuple[Dim, ...], bool]:
    last = _channels_last(config)
    channels = shape[-1] if last else shape[1]
    spatial = shape[1:-1] if last else shape[2:]
    return channels, tuple(spatial), last


def _pack(batch: Dim, spatial: tuple[Dim, ...], channels: Dim, last: bool) -> Shape:
    return (batch, *spatial, channels) if last else (batch, channels, *spatial)


def conv(config: dict[str, Any], inputs: list[Shape]) -> Shape:
    shape = inputs[0]
    channels, spatial, last = split_channels(config, shape)
    rank = len(spatial)
    kernel = tuple_of(config["kernel_size"], rank)
    strides = tuple_of(config.get("strides", 1), rank)
    dilation = tuple_of(config.get("dilation_rate", 1), rank)
    padding = config.get("padding", "valid")
    out = tuple(
        _conv_len(n, k, s, padding, d)
        for n, k, s, d in zip(spatial, kernel, strides, dilation, strict=False)
    )
    if "filters" in config and config["filters"] is not None:
        filters = config["filters"]
    else:
        filters = None if channels is None else channels * config.get("depth_multiplier", 1)
    return _pack(shape[0], out, filters, last)


def deconv(config: dict[str, Any], inputs: list[Shape]) -> Shape:
    shape = inputs[0]
    _, spatial, last = split_channels(config, shape)
    rank = len(spatial)
    kernel = tuple_of(config["kernel_size"], rank)
    strides = tuple_of(config.get("strides", 1), rank)
    dilation = tuple_of(config.get("dilation_rate", 1), rank)
    out_pad = config.get("output_padding")
    pads = tuple_of(out_pad, rank) if out_pad is not None else (None,) * rank
    padding = config.get("padding", "valid")
    out = tuple(
        _deconv_len(n, k, s, padding, d, p)
        for n, k, s, d, p in zip(spatial, kernel, strides, dilation, pads, strict=False)
    )
    return _pack(shape[0], out, config["filters"], last)


def pool(config: dict[str, Any], inputs: list[Shape]) -> Shape:
    shape = inputs[0]
    channels, spatial, last = split_channels(config, shape)
    rank = len(spatial)
    pool = tuple_of(config["pool_size"], rank)
    strides = tuple_of(config.get("strides") or pool, rank)
    padding = config.get("padding", "valid")
    out = tuple(_conv_len(n, k, s, padding)
                for n, k, s in zip(spatial, pool, strides, strict=False))
    return _pack(shape[0], out, channels, last)


def global_pool(config: dict[str, Any], inputs: list[Shape]) -> Shape:
    shape = inputs[0]
    channels, spatial, last = split_channels(config, shape)
    if config.get("keepdims"):
        return _pack(shape[0], (1,) * len(spatial), channels, last)
    return (shape[0], channels)


def dense(config: dict[str, Any], inputs: list[Shape]) -> Shape:
    return (*inputs[0][:-1], config["units"])


def flatten(config: dict[str, Any], inputs: list[Shape]) -> Shape:
    shape = inputs[0]
    if not _channels_last(config) and len(shape) > 2:
        shape = (shape[0], *shape[2:], shape[1])
    rest = [d for d in shape[1:] if d is not None]
    return (shape[0], None if len(rest) < len(shape) - 1 else math.prod(rest))


def reshape(config: dict[str, Any], inputs: list[Shape]) -> Shape:
    target = list(config["target_shape"])
    rest = [d for d in inputs[0][1:] if d is not None]
    if -1 in target:
        known = math.prod(d for d in target if d != -1)
        if len(rest) < len(inputs[0]) - 1 or known == 0:
            target[target.index(-1)] = None
        else:
            target[target.index(-1)] = math.prod(rest) // known
    return (inputs[0][0], *target)


def permute(config: dict[str, Any], inputs: list[Shape]) -> Shape:
    shape = inputs[0]
    return (shape[0], *(shape[d] for d in config["dims"]))


def repeat(config: dict[str, Any], inputs: list[Shape]) -> Shape:
    return (inputs[0][0], config["n"], inputs[0][1])


def _padding_pairs(value: Any, rank: int) -> list[tuple[int, int]]:
    if isinstance(value, int):
        return [(value, value)] * rank
    value = list(value)
    if rank == 1 and len(value) == 2 and all(isinstance(v, int) for v in value):
        return [(value[0], value[1])]  # Cropping1D((2, 3)), ZeroPadding1D((1, 2)): one pair
    if len(value) != rank:
        raise ValueError("rank mismatch")
    return [(v, v) if isinstance(v, int) else (v[0], v[1]) for v in value]


def resize_spatial(key: str, sign: int) -> Callable[[dict[str, Any], list[Shape]], Shape]:
    def rule(config: dict[str, Any], inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        channels, spatial, last = split_channels(config, shape)
        pairs = _padding_pairs(config[key], len(spatial))
        out = tuple(None if n is None else n + sign * (a + b)
                    for n, (a, b) in zip(spatial, pairs, strict=False))
        return _pack(shape[0], out, channels, last)

    return rule


def upsample(config: dict[str, Any], inputs: list[Shape]) -> Shape:
    shape = inputs[0]
    channels, spatial, last = split_channels(config, shape)
    size = tuple_of(config.get("size", 2), len(spatial))
    out = tuple(None if n is None else n * k for n, k in zip(spatial, size, strict=False))
    return _pack(shape[0], out, channels, last)


def merge(config: dict[str, Any], inputs: list[Shape]) -> Shape:
    rank = max(len(s) for s in inputs)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in inputs]
    out: list[Dim] = []
    for dims in zip(*padded, strict=True):
        known = [d for d in dims if d is not None and d != 1]
        if known:
            out.append(known[0])
        elif all(d == 1 for d in dims):
            out.append(1)
        else:
            out.append(None)
    return tuple(out)


def concat(config: dict[str, Any], inputs: list[Shape]) -> Shape:
    axis = config.get("axis", -1)
    rank = len(inputs[0])
    axis = axis % rank
    out = list(inputs[0])
    sizes = [s[axis] for s in inputs]
    out[axis] = None if any(d is None for d in sizes) else sum(sizes)
    return tuple(out)


def embedding(config: dict[str, Any], inputs: list[Shape]) -> Shape:
    return (*inputs[0], config["output_dim"])


def recurrent(states: int) -> Callable[[dict[str, Any], list[Shape]], list[Shape]]:
    """An RNN layer's outputs: the sequence or last output, then `states` state tensors when
    `return_state` (LSTM: h and c; GRU, SimpleRNN: h)."""

    def rule(config: dict[str, Any], inputs: list[Shape]) -> list[Shape]:
        shape = inputs[0]
        units = config["units"]
        sequences = config.get("return_sequences")
        out: Shape = (shape[0], shape[1], units) if sequences else (shape[0], units)
        if not config.get("return_state"):
            return [out]
        return [out] + [(shape[0], units)] * states

    return rule


def resizing(config: dict[str, Any], inputs: list[Shape]) -> Shape:
    shape = inputs[0]
    channels, _, last = split_channels(config, shape)
    return _pack(shape[0], (config["height"], config["width"]), channels, last)


def dot_attention(config: dict[str, Any], inputs: list[Shape]) -> Shape:
    """`Attention`/`AdditiveAttention` on [query, value(, key)]: the query's steps, the
    value's width (keras/src/layers/attention/attention.py, compute_output_shape)."""
    query, value = inputs[0], inputs[1] if len(inputs) > 1 else inputs[0]
    return (*query[:-1], value[-1])


def einsum_dense(config: dict[str, Any], inputs: list[Shape]) -> Shape:
    """EinsumDense: the batch dimension, what `...` elides, and `output_shape` as given
    (keras/src/layers/core/einsum_dense.py, _analyze_split_string: unknown entries stay
    unknown, and the left-elided dimensions are inserted as Keras inserts them)."""
    shape = inputs[0]
    equation = str(config["equation"]).replace(" ", "")
    partial = config["output_shape"]
    out: list[Dim] = [shape[0], *([partial] if isinstance(partial, int) else list(partial))]
    if re.fullmatch(r"[a-zA-Z]+,[a-zA-Z]+->[a-zA-Z]+", equation):
        return tuple(out)
    left = re.fullmatch(r"\.\.\.([a-zA-Z]+),[a-zA-Z]+->\.\.\.[a-zA-Z]+", equation)
    right = re.fullmatch(r"([a-zA-Z]+)\.\.\.,[a-zA-Z]+->[a-zA-Z]+\.\.\.", equation)
    match = left or right
    if match is None:
        raise ValueError(f"an einsum equation this rule does not read: {equation}")
    elided = len(shape) - len(match.group(1))
    if left:
        for i in range(1, elided):
            out.insert(1, shape[i])
    else:
        out += shape[len(shape) - elided:]
    return tuple(out)


def dot(config: dict[str, Any], inputs: list[Shape]) -> Shape:
    """`Dot` (keras/src/layers/merging/dot.py, compute_output_shape)."""
    first, second = list(inputs[0]), list(inputs[1])
    axes = config.get("axes", -1)
    if isinstance(axes, int):
        axes = [axes % len(first), axes % len(second)] if axes < 0 else [axes, axes]
    first.pop(axes[0])
    second.pop(axes[1])
    second.pop(0)
    out = first + second
    return tuple(out + [1]) if len(out) == 1 else tuple(out)


def category_encoding(config: dict[str, Any], inputs: list[Shape]) -> Shape:
    """`CategoryEncoding` (keras/src/layers/preprocessing/category_encoding.py)."""
    shape, tokens = inputs[0], int(config["num_tokens"])
    if config.get("output_mode", "multi_hot") == "one_hot" and shape[-1] != 1:
        return (*shape, tokens)
    if len(shape) == 1:
        return (*shape, tokens)
    return (*shape[:-1], tokens)


def attention_like(config: dict[str, Any], inputs: list[Shape]) -> Shape:
    query = inputs[0]
    out_dim = config.get("output_shape")
    if out_dim is None:
        return query
    if isinstance(out_dim, int):
        return (*query[:-1], out_dim)
    return (*query[:-1], *out_dim)


def format_shape(shape: Any) -> str:
    """Keras style "(None, 28, 28, 3)"; `?` where the shape is unknown."""
    if shape is None:
        return "?"
    if isinstance(shape, list) and shape and all(isinstance(s, (tuple, list)) or s is None
                                                 for s in shape):
        return ", ".join(format_shape(s) for s in shape)
    dims = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({dims},)" if len(shape) == 1 else f"({dims})"
