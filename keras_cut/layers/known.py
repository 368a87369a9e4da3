"""What keras-cut knows about each Keras layer class, without importing Keras: one entry per
class in `KINDS`, saying
- `shape`: the output shapes of a call, from config and input shapes (rules in `shapes`);
- `weights`: the arrays it stores, in `.keras` storage order, with trainable flags;
- `expected`: the shapes those arrays must have, given the input shape (the safety check);
- `macs`: multiply-accumulates per sample of one call (rules in `macs`);
- `cell`: whether a `.keras` file keeps its arrays under `cell/` (recurrent layers);
- `layout`: where a `.keras` file keeps them otherwise (a Bidirectional's two directions);
- `training_only`: config fields that change training only (the structure gate ignores them);
- `hazard`: what loading the class does beyond computing: runs code, needs code the file
  cannot carry, or reads other files (`model/safety.py` turns it into a finding);
- `vocabulary`, `keeps_ids`: integer ids it looks up in a table of that config field's size,
  or passes on unchanged (verify's random feeds stay below the table);
- `mask`: whether a call makes a Keras mask, given the config (a cut input loses it);
- `legacy_dropped`, `legacy_build_records`, `wrapper`: how a tf.keras 2 config of the class is
  brought to Keras 3 (`layers/legacy.py`).

A field left None means "not known": shapes and costs show `?`, arrays keep their stored names
and count as trainable (what Keras does for plain `add_weight` calls). Supporting a new class
means adding its entry here.

`.keras` files store a layer's arrays by index (`vars/0`, `vars/1`); Keras writes the trainable
variables first, then the non-trainable ones, each in creation order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from keras_cut.layers import macs, shapes
from keras_cut.layers.macs import MacsRule, Weights
from keras_cut.layers.naming import snake_case, unique_name
from keras_cut.layers.shapes import Shape

WeightSpec = tuple[str, bool]  # (name, trainable)
Config = dict[str, Any]

# tf.keras 2 records TensorFlow functions applied to symbolic tensors (`h * 2.0`, `tf.concat`)
# as these layers; Keras 3 has no such class.
TF_OP_LAYERS = {"TFOpLambda", "SlicingOpLambda"}

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


@dataclass(frozen=True)
class LayerKind:
    shape: Callable[[Config, list[Shape]], Any] | None = None
    weights: Callable[[Config], list[WeightSpec]] | None = None
    expected: Callable[[Config, Shape], dict[str, tuple[int, ...]]] | None = None
    macs: MacsRule | None = None
    cell: bool = False
    # where a `.keras` file keeps `count` arrays given in creation order, when not `vars/i`
    # (or `cell/vars/i` for `cell` layers)
    layout: Callable[[Config, int], list[str] | None] | None = None
    # config fields that change training only, never what a call with training=False computes
    # (besides the initializers, regularizers, constraints and `trainable` of every class)
    training_only: tuple[str, ...] = ()
    hazard: Hazard | None = None
    vocabulary: str | None = None
    keeps_ids: bool = False
    mask: Callable[[Config], bool] | None = None
    # tf.keras 2 arguments Keras 3 lacks: {argument: the only value that may be dropped}
    legacy_dropped: tuple[tuple[str, Any], ...] = ()
    # arguments that only record what the layer was built with (Keras 3 builds from the call)
    legacy_build_records: tuple[str, ...] = ()
    wrapper: bool = False  # holds a layer config under "layer" (and "backward_layer")


@dataclass(frozen=True)
class Hazard:
    """What loading a class does besides computing."""

    what: str  # CODE: runs code from the file; FOREIGN: needs code the file cannot carry;
    # READS_FILES: reads the config fields `fields` as paths of other files
    why: str
    fields: tuple[str, ...] = ()


CODE, FOREIGN, READS_FILES = "code", "foreign", "reads-files"


# --- weight rules ----------------------------------------------------------------------------


def _use_bias(config: Config) -> bool:
    return config.get("use_bias", True) is not False


def _kernel_bias(config: Config) -> list[WeightSpec]:
    return [("kernel", True)] + ([("bias", True)] if _use_bias(config) else [])


def _einsum_weights(config: Config) -> list[WeightSpec]:
    return [("kernel", True)] + ([("bias", True)] if config.get("bias_axes") else [])


def _separable_weights(config: Config) -> list[WeightSpec]:
    specs = [("depthwise_kernel", True), ("pointwise_kernel", True)]
    return specs + ([("bias", True)] if _use_bias(config) else [])


def _scale_center(config: Config) -> list[WeightSpec]:
    specs = []
    if config.get("scale", True) is not False:
        specs.append(("gamma", True))
    if config.get("center", True) is not False:
        specs.append(("beta", True))
    return specs


def _batch_norm_weights(config: Config) -> list[WeightSpec]:
    return _scale_center(config) + [("moving_mean", False), ("moving_variance", False)]


def _rms_weights(config: Config) -> list[WeightSpec]:
    return [("gamma", True)] if config.get("scale", True) is not False else []


def _recurrent_weights(config: Config) -> list[WeightSpec]:
    return [("kernel", True), ("recurrent_kernel", True)] + (
        [("bias", True)] if _use_bias(config) else [])


def _normalization_weights(config: Config) -> list[WeightSpec]:
    # Given mean and variance in its config, it builds constants, not variables.
    if config.get("mean") is not None and config.get("variance") is not None:
        return []
    return [("mean", False), ("variance", False), ("count", False)]


# --- expected weight shapes ------------------------------------------------------------------


def _channels(config: Config, input_shape: Shape) -> Any:
    last = config.get("data_format", "channels_last") != "channels_first"
    return input_shape[-1] if last else input_shape[1]


def _dense_expected(config: Config, input_shape: Shape) -> dict[str, tuple[int, ...]]:
    return {"kernel": (input_shape[-1], config["units"]), "bias": (config["units"],)}


def _conv_expected(config: Config, input_shape: Shape) -> dict[str, tuple[int, ...]]:
    rank = len(input_shape) - 2
    size = config["kernel_size"]
    size = tuple(size) if isinstance(size, (list, tuple)) else (size,) * rank
    groups = config.get("groups", 1) or 1
    filters = config["filters"]
    return {"kernel": (*size, _channels(config, input_shape) // groups, filters),
            "bias": (filters,)}


def _depthwise_expected(config: Config, input_shape: Shape) -> dict[str, tuple[int, ...]]:
    size = tuple(config["kernel_size"])
    multiplier = config.get("depth_multiplier", 1)
    channels = _channels(config, input_shape)
    return {"kernel": (*size, channels, multiplier), "bias": (channels * multiplier,)}


def _embedding_expected(config: Config, input_shape: Shape) -> dict[str, tuple[int, ...]]:
    return {"embeddings": (config["input_dim"], config["output_dim"])}


def _norm_expected(config: Config, input_shape: Shape) -> dict[str, tuple[int, ...]]:
    axis = config.get("axis", -1)
    if isinstance(axis, list) and len(axis) == 1:
        axis = axis[0]
    if not isinstance(axis, int):
        return {}
    width = input_shape[axis]
    if width is None:
        return {}
    size = (width,)
    return {n: size for n in ("gamma", "beta", "moving_mean", "moving_variance")}


# --- wrappers: their cost is the wrapped layer's ---------------------------------------------


def _wrapped(config: Config, key: str = "layer") -> tuple[str, Config] | None:
    inner = config.get(key)
    if not isinstance(inner, dict) or not isinstance(inner.get("config"), dict):
        return None
    return str(inner.get("class_name", "")), inner["config"]


def _bidirectional_macs(config: Config, inputs: list[Shape], outputs: list[Shape],
                        weights: Weights) -> int | None:
    forward = _wrapped(config)
    backward = _wrapped(config, "backward_layer") or forward
    if forward is None or backward is None:
        return None
    costs = [layer_macs(name, inner, inputs[:1], [], {}) for name, inner in (forward, backward)]
    return None if None in costs else sum(costs)  # type: ignore[arg-type]


def _bidirectional_layout(config: Config, count: int) -> list[str] | None:
    """Keras 3 keeps each direction's arrays under `forward_layer/` and `backward_layer/`, in
    that order (a tf.keras 2 file lists them in the same order)."""
    forward = _wrapped(config)
    backward = _wrapped(config, "backward_layer") or forward
    if forward is None or backward is None or count % 2:
        return None
    half = count // 2
    places = []
    for direction, (name, _) in (("forward_layer", forward), ("backward_layer", backward)):
        kind = KINDS.get(name)
        if kind is None or not kind.cell:
            return None
        places += [f"{direction}/cell/vars/{i}" for i in range(half)]
    return places


def _time_distributed_layout(config: Config, count: int) -> list[str] | None:
    """Keras 3 keeps the wrapped layer's arrays under `layer/`, in the wrapped layer's own
    layout (`layer/vars/0`, an RNN's `layer/cell/vars/0`)."""
    inner = _wrapped(config)
    if inner is None:
        return None
    places = array_layout(inner[0], inner[1], count)
    return None if places is None else [f"layer/{place}" for place in places]


def _rnn_layout(config: Config, count: int) -> list[str] | None:
    """A generic `RNN`: Keras 3 keeps its cell's arrays under `cell/`, and a StackedRNNCells'
    under `cell/cells/<cell group>/` (named by class, numbered as Keras numbers groups), each
    cell's in creation order (a tf.keras 2 file lists them cell after cell)."""
    cell = _wrapped(config, "cell")
    if cell is None:
        return None
    if cell[0] != "StackedRNNCells":
        places = array_layout(cell[0], cell[1], count)
        return None if places is None else [f"cell/{place}" for place in places]
    cells = cell[1].get("cells")
    if not isinstance(cells, list):
        return None
    used: dict[str, int] = {}
    found: list[str] = []
    for item in cells:
        inner = _wrapped({"cell": item}, "cell")
        specs = weight_specs(inner[0], inner[1]) if inner is not None else None
        if inner is None or specs is None:
            return None
        group = unique_name(snake_case(inner[0]), used)
        found += [f"cell/cells/{group}/vars/{i}" for i in range(len(specs))]
    return found if len(found) == count else None


def _attention_layout(config: Config, count: int) -> list[str] | None:
    """Keras 3 keeps MultiHeadAttention's arrays in its four projections, each kernel then bias
    (tf.keras 2 lists them in the same order: query, key, value, attention_output)."""
    per = 2 if config.get("use_bias", True) is not False else 1
    if count != 4 * per:
        return None
    return [f"{part}_dense/vars/{i}" for part in ("query", "key", "value", "output")
            for i in range(per)]


def _time_distributed_macs(config: Config, inputs: list[Shape], outputs: list[Shape],
                           weights: Weights) -> int | None:
    inner = _wrapped(config)
    shape = inputs[0]
    if inner is None or len(shape) < 3 or shape[1] is None:
        return None
    step_in = [(shape[0], *shape[2:])]
    step_out = [(s[0], *s[2:]) for s in outputs if s is not None and len(s) >= 2]
    cost = layer_macs(inner[0], inner[1], step_in, step_out, {})
    return None if cost is None else shape[1] * cost


def _bidirectional_shape(config: Config, inputs: list[Shape]) -> list[Shape] | None:
    forward = _wrapped(config)
    backward = _wrapped(config, "backward_layer") or forward
    if forward is None or backward is None:
        return None
    fw = infer_output_shapes(forward[0], forward[1], inputs[:1])
    bw = infer_output_shapes(backward[0], backward[1], inputs[:1])
    if not fw or not bw or fw[0] is None or bw[0] is None:
        return None
    mode = config.get("merge_mode", "concat")
    states = fw[1:] + bw[1:]
    if mode is None:
        return [fw[0], bw[0], *states]  # type: ignore[list-item]
    if mode == "concat":
        last = None if fw[0][-1] is None or bw[0][-1] is None else fw[0][-1] + bw[0][-1]
        return [(*fw[0][:-1], last), *states]  # type: ignore[list-item]
    return [fw[0], *states]  # type: ignore[list-item]


def _time_distributed_shape(config: Config, inputs: list[Shape]) -> list[Shape] | None:
    inner = _wrapped(config)
    shape = inputs[0]
    if inner is None or len(shape) < 3:
        return None
    step = infer_output_shapes(inner[0], inner[1], [(shape[0], *shape[2:])])
    if not step or any(s is None for s in step):
        return None
    return [(s[0], shape[1], *s[1:]) for s in step]  # type: ignore[index]


# --- the table -------------------------------------------------------------------------------

KINDS: dict[str, LayerKind] = {}


def _add(names: str, **fields: Any) -> None:
    for name in names.split():
        KINDS[name] = LayerKind(**fields)


def _identity(config: Config, inputs: list[Shape]) -> Shape:
    return inputs[0]


_add("InputLayer", macs=macs.none)
_add("Dense", shape=shapes.dense, weights=_kernel_bias, expected=_dense_expected,
     macs=macs.dense)
_add("EinsumDense", shape=shapes.einsum_dense, weights=_einsum_weights, macs=macs.einsum_dense)
_add("Conv1D Conv2D Conv3D", shape=shapes.conv, weights=_kernel_bias, expected=_conv_expected,
     macs=macs.conv)
_add("DepthwiseConv1D", shape=shapes.conv, weights=_kernel_bias, macs=macs.depthwise)
_add("DepthwiseConv2D", shape=shapes.conv, weights=_kernel_bias, expected=_depthwise_expected,
     macs=macs.depthwise)
_add("SeparableConv1D SeparableConv2D", shape=shapes.conv, weights=_separable_weights,
     macs=macs.separable)
_add("Conv1DTranspose Conv2DTranspose Conv3DTranspose", shape=shapes.deconv,
     weights=_kernel_bias, macs=macs.transposed)
_add("LocallyConnected1D LocallyConnected2D", weights=_kernel_bias)
_add("BatchNormalization", shape=_identity, weights=_batch_norm_weights,
     expected=_norm_expected, macs=macs.none)
_add("LayerNormalization", shape=_identity, weights=_scale_center, expected=_norm_expected,
     macs=macs.none)
_add("GroupNormalization", shape=_identity, weights=_scale_center, macs=macs.none)
_add("RMSNormalization", shape=_identity, weights=_rms_weights, macs=macs.none)
_add("Normalization", shape=_identity, weights=_normalization_weights, macs=macs.none)
_add("Embedding", shape=shapes.embedding, weights=lambda c: [("embeddings", True)],
     expected=_embedding_expected, macs=macs.none)
_add("LSTM", shape=shapes.recurrent(2), weights=_recurrent_weights, macs=macs.recurrent(4),
     cell=True)
_add("GRU", shape=shapes.recurrent(1), weights=_recurrent_weights, macs=macs.recurrent(3),
     cell=True)
_add("SimpleRNN", shape=shapes.recurrent(1), weights=_recurrent_weights,
     macs=macs.recurrent(1), cell=True)
_add("LSTMCell GRUCell SimpleRNNCell", weights=_recurrent_weights)
# an RNN around a ConvLSTMCell: Keras 3 keeps the cell's arrays under `cell/`
_add("ConvLSTM1D ConvLSTM2D ConvLSTM3D", weights=_recurrent_weights, cell=True)
_add("PReLU", shape=_identity, weights=lambda c: [("alpha", True)], macs=macs.none)
_add("MultiHeadAttention", shape=shapes.attention_like, macs=macs.multi_head_attention,
     layout=_attention_layout)
_add("Attention", shape=shapes.dot_attention, macs=macs.dot_attention)
_add("AdditiveAttention", shape=shapes.dot_attention)
_add("Dot", shape=shapes.dot, macs=macs.dot)
_add("CategoryEncoding", shape=shapes.category_encoding, macs=macs.none)
_add("Bidirectional", shape=_bidirectional_shape, macs=_bidirectional_macs,
     layout=_bidirectional_layout)
_add("TimeDistributed", shape=_time_distributed_shape, macs=_time_distributed_macs,
     layout=_time_distributed_layout)
_add("RNN", layout=_rnn_layout)
# no arrays, no multiply-accumulates
_add("Activation ReLU LeakyReLU ELU Softmax ThresholdedReLU Dropout SpatialDropout1D "
     "SpatialDropout2D SpatialDropout3D GaussianNoise GaussianDropout AlphaDropout "
     "UnitNormalization Rescaling ActivityRegularization Masking Identity RandomFlip "
     "RandomRotation RandomZoom RandomTranslation RandomContrast RandomBrightness",
     shape=_identity, macs=macs.none)
_add("MaxPooling1D MaxPooling2D MaxPooling3D AveragePooling1D AveragePooling2D "
     "AveragePooling3D", shape=shapes.pool, macs=macs.none)
_add("GlobalAveragePooling1D GlobalAveragePooling2D GlobalAveragePooling3D GlobalMaxPooling1D "
     "GlobalMaxPooling2D GlobalMaxPooling3D", shape=shapes.global_pool, macs=macs.none)
_add("Flatten", shape=shapes.flatten, macs=macs.none)
_add("Reshape", shape=shapes.reshape, macs=macs.none)
_add("Permute", shape=shapes.permute, macs=macs.none)
_add("RepeatVector", shape=shapes.repeat, macs=macs.none)
for _rank in "123":
    _add(f"ZeroPadding{_rank}D", shape=shapes.resize_spatial("padding", +1), macs=macs.none)
    _add(f"Cropping{_rank}D", shape=shapes.resize_spatial("cropping", -1), macs=macs.none)
    _add(f"UpSampling{_rank}D", shape=shapes.upsample, macs=macs.none)
_add("Add Subtract Multiply Average Maximum Minimum", shape=shapes.merge, macs=macs.none)
_add("Concatenate", shape=shapes.concat, macs=macs.none)
_add("Resizing", shape=shapes.resizing, macs=macs.none)


def _training_only(names: str, fields: str) -> None:
    _facts(names, training_only=tuple(fields.split()))


def _facts(names: str, **fields: Any) -> None:
    """More of what is known about classes (their entry made where it has none yet)."""
    for name in names.split():
        KINDS[name] = replace(KINDS.get(name, LayerKind()), **fields)


_training_only("Dropout SpatialDropout1D SpatialDropout2D SpatialDropout3D AlphaDropout "
               "GaussianDropout", "rate noise_shape seed")
_training_only("GaussianNoise", "stddev seed")
_training_only("BatchNormalization", "momentum renorm_momentum")
_training_only("ActivityRegularization", "l1 l2")
_training_only("LSTM GRU SimpleRNN LSTMCell GRUCell SimpleRNNCell ConvLSTM1D ConvLSTM2D ConvLSTM3D",
               "dropout recurrent_dropout seed")
_facts("Lambda", hazard=Hazard(CODE, "runs Python code stored in the file (a Lambda layer)"))
_facts("TFSMLayer", hazard=Hazard(CODE, "loads and runs a TensorFlow SavedModel from another path"))
_facts("TorchModuleWrapper", hazard=Hazard(
    CODE, "unpickles a PyTorch module stored in the file, which can run any code"))
_facts("JaxLayer", hazard=Hazard(FOREIGN, "wraps JAX functions that the file cannot carry"))
_facts("FlaxLayer", hazard=Hazard(FOREIGN, "wraps a Flax module that the file cannot carry"))
_facts("StringLookup IntegerLookup TextVectorization",
       hazard=Hazard(READS_FILES, "reads its vocabulary from another file",
                     ("vocabulary", "vocabulary_path")))
# Keras' own and keras_hub's id lookups (its models are read as functional graphs with
# --custom-objects keras_hub), and what moves ids around without changing them
_facts("Embedding ReversibleEmbedding", vocabulary="input_dim")
_facts("TokenAndPositionEmbedding", vocabulary="vocabulary_size")
_facts("Reshape Flatten Permute RepeatVector Identity Cropping1D Cropping2D Cropping3D "
       "Concatenate Masking Dropout", keeps_ids=True)
_facts("Masking", mask=lambda config: True)
_facts("Embedding", mask=lambda config: config.get("mask_zero") is True)
# tf.keras 2 recurrent layers wrote time_major; False is the only layout Keras 3 has
_facts("LSTM GRU SimpleRNN RNN ConvLSTM1D ConvLSTM2D ConvLSTM3D",
       legacy_dropped=(("time_major", False),))
_facts("DepthwiseConv1D DepthwiseConv2D", legacy_dropped=(("groups", 1),))
# False is what Keras 3 does (masked scores set to a large negative number)
_facts("MultiHeadAttention", legacy_dropped=(("softmax_robust_masking", False),),
       legacy_build_records=("query_shape", "key_shape", "value_shape"))
_facts("Bidirectional TimeDistributed", wrapper=True)
GENERIC_TRAINING_ONLY = ("trainable", "activity_regularizer")
GENERIC_TRAINING_SUFFIXES = ("_initializer", "_regularizer", "_constraint")


def is_training_only(class_name: str, field: str) -> bool:
    """Whether a layer config field (its top-level name) only matters when training."""
    kind = KINDS.get(class_name)
    return field in GENERIC_TRAINING_ONLY or field.endswith(GENERIC_TRAINING_SUFFIXES) or \
        (kind is not None and field in kind.training_only)


def _reduce_shape(config: Config, inputs: list[Shape]) -> Shape:
    shape, axis = inputs[0], config.get("axis")
    axes = range(len(shape)) if axis is None else \
        [a % len(shape) for a in (axis if isinstance(axis, list) else [axis])]
    if 0 in axes:
        raise ValueError("a reduction over the batch")
    if config.get("keepdims"):
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


# Keras 3 operations in a functional model (what tf.keras 2's TensorFlow operations become,
# `tfops`); Add, Subtract, Multiply, Maximum, Minimum and Concatenate share the layers' entries
_add("Relu Relu6 Sigmoid Tanh Sqrt Exp Log Square Absolute Cast", shape=_identity,
     macs=macs.none)
_add("TrueDivide Power", shape=shapes.merge, macs=macs.none)
_add("Mean Sum Max Min", shape=_reduce_shape, macs=macs.none)


# --- what the rest of keras-cut asks ---------------------------------------------------------


def weight_specs(class_name: str, config: Config) -> list[WeightSpec] | None:
    """The weights a layer of this class stores, in `.keras` storage order; None if unknown.
    A layer quantized by Keras (`model.quantize`) stores its own set (`QUANTIZED`)."""
    kind = KINDS.get(class_name)
    if kind is None or kind.weights is None:
        return None
    mode = quantization(config)
    if mode is None:
        return kind.weights(config)
    return _quantized_specs(class_name, config, *mode)


# What Keras 3 stores for a quantized layer, in its `variable_serialization_spec` order
# (keras/src/layers/core/dense.py, einsum_dense.py, embedding.py), with Keras' trainable flags
# (the quantized kernel and its scales are not trained; float8's scales and histories are)
QUANTIZED: dict[tuple[str, str], list[WeightSpec]] = {
    **{(cls, "int8"): [("kernel", False), ("bias", True), ("kernel_scale", False)]
       for cls in ("Dense", "EinsumDense")},
    **{(cls, "int4"): [("kernel", False), ("bias", True), ("kernel_scale", False),
                       ("kernel_zero", False), ("g_idx", False)]
       for cls in ("Dense", "EinsumDense")},
    **{(cls, "float8"): [(name, True) for name in (
        "kernel", "bias", "inputs_scale", "inputs_amax_history", "kernel_scale",
        "kernel_amax_history", "outputs_grad_scale", "outputs_grad_amax_history")]
       for cls in ("Dense", "EinsumDense")},
    ("Embedding", "int8"): [("embeddings", False), ("embeddings_scale", False)],
    ("Embedding", "int4"): [("embeddings", False), ("embeddings_scale", False),
                            ("embeddings_zero", False), ("g_idx", False)],
}
QUANTIZED_POLICIES = ("QuantizedDTypePolicy", "QuantizedFloat8DTypePolicy", "Int4DTypePolicy")
SUB_CHANNEL_ONLY = ("kernel_zero", "embeddings_zero", "g_idx")  # int4 with a block size


def quantization(config: Config) -> tuple[str, bool] | None:
    """A layer's quantization mode from its dtype policy (`int8`, `int4`, `float8`) and
    whether int4 works in blocks (`int4/128`); None for a layer Keras did not quantize."""
    policy = config.get("dtype")
    if not isinstance(policy, dict) or policy.get("class_name") not in QUANTIZED_POLICIES:
        return None
    inner = policy.get("config")
    mode = inner.get("mode") if isinstance(inner, dict) else None
    if not isinstance(mode, str):
        return None
    name, _, block = mode.partition("/")
    return name, block.lstrip("-").isdigit() and int(block) > 0


def _quantized_specs(class_name: str, config: Config, mode: str,
                     blocks: bool) -> list[WeightSpec] | None:
    specs = QUANTIZED.get((class_name, mode))
    if specs is None:
        return None  # another mode (gptq, awq) or class: keras-cut does not know its arrays
    has_bias = (_use_bias(config) if class_name == "Dense" else bool(config.get("bias_axes"))) \
        if class_name != "Embedding" else False
    return [(name, trainable) for name, trainable in specs
            if (name != "bias" or has_bias) and (blocks or name not in SUB_CHANNEL_ONLY)]


def array_layout(class_name: str, config: Config, count: int) -> list[str] | None:
    """Where a `.keras` file keeps a layer's `count` arrays (given in creation order), relative
    to the layer's group; None when keras-cut does not know."""
    if count == 0:
        return []
    kind = KINDS.get(class_name)
    if kind is not None and kind.layout is not None:
        return kind.layout(config, count)
    if kind is not None and kind.cell:
        return [f"cell/vars/{i}" for i in range(count)]
    specs = weight_specs(class_name, config)
    if specs is None or len(specs) != count:
        return None
    return [f"vars/{i}" for i in range(count)]


# config fields that are sizes or counts, for every class that has them: each value (or each
# entry of a tuple) must be a whole number a model can have
SIZE_FIELDS = ("units", "filters", "kernel_size", "strides", "pool_size", "dilation_rate",
               "depth_multiplier", "input_dim", "output_dim", "num_heads", "key_dim",
               "value_dim", "size", "num_tokens", "target_shape", "output_shape", "cropping",
               "padding", "groups")
MAX_SIZE = 2**31 - 1


def implausible(config: Config) -> tuple[str, Any] | None:
    """The first size field whose value is not a whole number in [0, 2**31) (a kernel_size
    of 1e30 would make every count meaningless), as (field, value); None if all are."""
    for key in SIZE_FIELDS:
        value = config.get(key)
        if value is None or isinstance(value, str):  # absent, or padding="same"
            continue
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, (list, tuple)):
                stack.extend(item)
            elif item is not None and not (type(item) is int and -1 <= item <= MAX_SIZE):
                return key, value
    return None


def infer_output_shapes(class_name: str, config: Config,
                        inputs: Sequence[Shape | None]) -> list[Shape | None] | None:
    """Shapes of a call's outputs, or None where this class or these inputs are not known."""
    if implausible(config) is not None:
        return None
    if class_name == "InputLayer":
        shape = config.get("batch_shape") or config.get("batch_input_shape")
        return [shapes.as_shape(shape)] if shape is not None else None
    kind = KINDS.get(class_name)
    if kind is None or kind.shape is None or not inputs or any(s is None for s in inputs):
        return None
    try:
        result = kind.shape(config, inputs)  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError):
        return None
    if result is None:
        return None
    return result if isinstance(result, list) else [result]


def layer_macs(class_name: str, config: Config, inputs: Sequence[Shape | None],
               outputs: Sequence[Shape | None], weights: Weights) -> int | None:
    """Multiply-accumulates per sample of one call; None when the class or a shape is unknown."""
    kind = KINDS.get(class_name)
    if kind is None or kind.macs is None or implausible(config) is not None:
        return None
    if kind.macs is macs.none:
        return 0
    if not inputs or any(s is None for s in inputs) or any(s is None for s in outputs):
        return None
    try:
        result = kind.macs(config, inputs, outputs, weights)  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError, AttributeError,
            OverflowError):
        return None
    # configs come from untrusted files: a float (Infinity) or negative count is no count
    return result if type(result) is int and result >= 0 else None


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


def expected_shapes(class_name: str, config: Config,
                    input_shape: tuple[Any, ...] | None) -> dict[str, tuple[int, ...]]:
    """The shapes a layer's weights must have, given its config and input; {} if not known."""
    kind = KINDS.get(class_name)
    if kind is None or kind.expected is None or quantization(config) is not None:
        return {}  # a quantized kernel is packed (int4) or scaled: its own shapes
    if not input_shape or any(not isinstance(d, int) for d in input_shape[1:]):
        return {}
    try:
        return kind.expected(config, input_shape)
    except (KeyError, TypeError, IndexError, ValueError, ZeroDivisionError):
        return {}


def entry(class_name: str) -> LayerKind:
    """The class's entry; an empty one (nothing known) for a class without."""
    return KINDS.get(class_name) or LayerKind()


def makes_mask(class_name: str, config: Config) -> bool:
    rule = entry(class_name).mask
    return rule is not None and rule(config)
