"""What keras-cut knows about Keras layer classes without importing Keras: weight names and
which weights are trainable.

`.keras` files store a layer's arrays by index (`vars/0`, `vars/1`); Keras writes the trainable
variables first, then the non-trainable ones, each in creation order. The tables below give
those names for the classes people use; anything else keeps its stored name and counts as
trainable, which is what Keras does for plain `add_weight` calls.
"""

from __future__ import annotations

from typing import Any

WeightSpec = tuple[str, bool]  # (name, trainable)

# Names of arrays that Keras never trains, whatever the class (legacy h5 files name them).
NON_TRAINABLE_NAMES = {
    "moving_mean",
    "moving_variance",
    "moving_stddev",
    "renorm_mean",
    "renorm_stddev",
    "count",
    "seed_generator_state",
}

KERNEL_BIAS = {
    "Dense",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "LocallyConnected1D",
    "LocallyConnected2D",
}
RECURRENT = {"LSTM", "GRU", "SimpleRNN", "LSTMCell", "GRUCell", "SimpleRNNCell", "ConvLSTM2D"}


def weight_specs(class_name: str, config: dict[str, Any]) -> list[WeightSpec] | None:
    """The weights a layer of this class stores, in `.keras` storage order; None if unknown."""
    use_bias = config.get("use_bias", True) is not False
    if class_name in KERNEL_BIAS:
        return [("kernel", True)] + ([("bias", True)] if use_bias else [])
    if class_name == "EinsumDense":
        return [("kernel", True)] + ([("bias", True)] if config.get("bias_axes") else [])
    if class_name in ("SeparableConv1D", "SeparableConv2D"):
        specs = [("depthwise_kernel", True), ("pointwise_kernel", True)]
        return specs + ([("bias", True)] if use_bias else [])
    if class_name == "BatchNormalization":
        specs = []
        if config.get("scale", True) is not False:
            specs.append(("gamma", True))
        if config.get("center", True) is not False:
            specs.append(("beta", True))
        return specs + [("moving_mean", False), ("moving_variance", False)]
    if class_name in ("LayerNormalization", "GroupNormalization", "RMSNormalization"):
        specs = []
        if config.get("scale", True) is not False:
            specs.append(("gamma", True))
        if config.get("center", True) is not False and class_name != "RMSNormalization":
            specs.append(("beta", True))
        return specs
    if class_name == "Embedding":
        return [("embeddings", True)]
    if class_name in RECURRENT:
        return [("kernel", True), ("recurrent_kernel", True)] + (
            [("bias", True)] if use_bias else []
        )
    if class_name == "PReLU":
        return [("alpha", True)]
    if class_name == "Normalization":
        # Given mean and variance in its config, it builds constants, not variables.
        if config.get("mean") is not None and config.get("variance") is not None:
            return []
        return [("mean", False), ("variance", False), ("count", False)]
    return None


# Recurrent layers keep their arrays in their cell (`.keras`: `layers/lstm/cell/vars/0`).
CELL_LAYERS = {"LSTM", "GRU", "SimpleRNN"}


def array_layout(class_name: str, config: dict[str, Any], count: int) -> list[str] | None:
    """Where a `.keras` file keeps a layer's `count` arrays (given in creation order), relative
    to the layer's group; None when keras-cut does not know."""
    if count == 0:
        return []
    if class_name in CELL_LAYERS:
        return [f"cell/vars/{i}" for i in range(count)]
    specs = weight_specs(class_name, config)
    if specs is None or len(specs) != count:
        return None
    return [f"vars/{i}" for i in range(count)]


def name_weights(
    class_name: str, config: dict[str, Any], stored_names: list[str]
) -> list[WeightSpec]:
    """Give stored arrays their Keras names and trainable flags."""
    specs = weight_specs(class_name, config)
    index_named = all(_is_index_name(n) for n in stored_names)
    if index_named and specs is not None and len(specs) == len(stored_names):
        return specs
    known = dict(specs or [])
    named: list[WeightSpec] = []
    for stored in stored_names:
        short = stored.rsplit("/", 1)[-1]
        named.append((stored, known.get(short, short not in NON_TRAINABLE_NAMES)))
    return named


def _is_index_name(name: str) -> bool:
    return name.rsplit("/", 1)[-1].isdigit()


def expected_shapes(
    class_name: str, config: dict[str, Any], input_shape: tuple[Any, ...] | None
) -> dict[str, tuple[int, ...]]:
    """The shapes a layer's weights must have, given its config and input; {} if not known."""
    if not input_shape or any(not isinstance(d, int) for d in input_shape[1:]):
        return {}
    try:
        last = config.get("data_format", "channels_last") != "channels_first"
        channels = input_shape[-1] if last else input_shape[1]
        if class_name == "Dense":
            return {"kernel": (input_shape[-1], config["units"]), "bias": (config["units"],)}
        if class_name in ("Conv1D", "Conv2D", "Conv3D"):
            rank = len(input_shape) - 2
            size = config["kernel_size"]
            size = tuple(size) if isinstance(size, (list, tuple)) else (size,) * rank
            groups = config.get("groups", 1) or 1
            filters = config["filters"]
            return {"kernel": (*size, channels // groups, filters), "bias": (filters,)}
        if class_name == "DepthwiseConv2D":
            size = tuple(config["kernel_size"])
            multiplier = config.get("depth_multiplier", 1)
            return {"kernel": (*size, channels, multiplier), "bias": (channels * multiplier,)}
        if class_name == "Embedding":
            return {"embeddings": (config["input_dim"], config["output_dim"])}
        if class_name in ("BatchNormalization", "LayerNormalization"):
            axis = config.get("axis", -1)
            if isinstance(axis, list) and len(axis) == 1:
                axis = axis[0]
            if not isinstance(axis, int):
                return {}
            size = (input_shape[axis],)
            return {n: size for n in ("gamma", "beta", "moving_mean", "moving_variance")}
    except (KeyError, TypeError, IndexError, ValueError, ZeroDivisionError):
        return {}
    return {}
