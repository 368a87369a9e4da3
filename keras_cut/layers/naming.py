"""Keras' automatic names: a layer's default name from its class (`BatchNormalization` ->
`batch_normalization`), made unique within a model (`dense`, `dense_1`, …) as Keras names the
groups of a weight file."""

from __future__ import annotations

import re


def snake_case(name: str) -> str:
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(name: str, used: dict[str, int]) -> str:
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name
