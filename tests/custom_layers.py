"""Custom classes for the tests, the kind users write: a subclassed model used as a layer, and
a layer holding its sublayers in a Python list (as keras_hub's encoders do)."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="kctest")
class Tower(keras.Model):
    """A subclassed model (not Functional): its weights live in its own attributes."""

    def __init__(self, units=6, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.first = keras.layers.Dense(units, activation="relu")
        self.second = keras.layers.Dense(units)

    def call(self, x):
        return self.second(self.first(x)) + x[..., : self.units]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="kctest")
class Stack(keras.layers.Layer):
    """Sublayers in a list: saved as `blocks/dense`, `blocks/dense_1`, ..."""

    def __init__(self, units=5, depth=3, **kwargs):
        super().__init__(**kwargs)
        self.units, self.depth = units, depth
        self.blocks = [keras.layers.Dense(units, activation="tanh") for _ in range(depth)]
        self.norm = keras.layers.LayerNormalization()

    def build(self, input_shape):
        shape = input_shape
        for block in self.blocks:
            block.build(shape)
            shape = (*shape[:-1], self.units)
        self.norm.build(shape)

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "depth": self.depth}
