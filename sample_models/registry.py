"""What each sample model is for; the tests and `make demo` read this, not file names."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Sample:
    name: str
    file: str
    purpose: str
    # Layer paths worth cutting at, by role: "prefix" outputs, "head" inputs, and so on.
    layers: dict[str, list[str]] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return HERE / self.file


SAMPLES = [
    Sample(
        "cnn", "cnn.keras",
        "the seed article's CNN (example 1): conv/pool stack, intermediate_dense, "
        "classification_head",
        {"prefix": ["intermediate_dense", "flatten"], "head": ["intermediate_dense"],
         "segment": ["max_pooling2d_1", "intermediate_dense"]},
    ),
    Sample(
        "text", "text.keras",
        "the seed article's text model (example 2): int32 input, embedding_layer, LSTM "
        "(vocabulary 1000, not 10000, to keep the file small)",
        {"prefix": ["embedding_layer", "lstm"], "head": ["lstm"]},
    ),
    Sample(
        "two_heads", "two_heads.keras",
        "the seed article's two-headed model (example 3): classification_output, regression_output",
        {"prefix": ["classification_output", "regression_output"], "head": ["shared_dense"]},
    ),
    Sample(
        "nested", "nested.keras",
        "a Functional backbone nested in the model, with a Sequential block nested in the backbone",
        {"prefix": ["backbone/block/block_conv", "backbone/stem_bn"],
         "head": ["backbone/stem_relu"], "nested_model": ["backbone", "backbone/block"]},
    ),
    Sample(
        "residual", "residual.keras",
        "a skip connection from res_a to res_add crosses the middle (res_b, res_c)",
        {"prefix": ["res_b", "res_add"], "head": ["res_b"], "crossing": ["res_a"]},
    ),
    Sample(
        "sequential", "sequential.keras",
        "a Sequential file with Dropout and BatchNormalization (Keras gives no .input for it)",
        {"prefix": ["seq_bn", "seq_dense_1"], "head": ["seq_dropout"]},
    ),
    Sample(
        "shared", "shared.keras",
        "shared_dense is called twice (shared weights), so its name alone is ambiguous",
        {"prefix": ["shared_dense@0", "shared_dense@1"], "ambiguous": ["shared_dense"]},
    ),
    Sample(
        "cnn_h5", "cnn.h5",
        "the seed article's CNN saved as a legacy .h5",
        {"prefix": ["intermediate_dense"], "head": ["intermediate_dense"]},
    ),
]

BY_NAME = {s.name: s for s in SAMPLES}
