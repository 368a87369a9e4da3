"""Baseline for `cut`: the seed article's recipe (load, Model(input, get_layer().output),
freeze, save). With a fourth argument "head", the same recipe from a layer to the end."""

import sys

import keras

model_path, layer, output = sys.argv[1:4]
base = keras.saving.load_model(model_path, compile=False)
if sys.argv[4:] == ["head"]:
    sub = keras.Model(inputs=base.get_layer(layer).output, outputs=base.output)
else:
    sub = keras.Model(inputs=base.input, outputs=base.get_layer(layer).output)
sub.trainable = False
sub.save(output)
