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
        return [("mean", False), ("variance", False), ("count", False)]
    return None


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
