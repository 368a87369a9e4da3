"""Baseline for `cut --verify`: load parent and submodel, compare predict() outputs."""

import sys

import keras
import numpy as np

parent_path, sub_path, layer = sys.argv[1:4]
parent = keras.saving.load_model(parent_path, compile=False)
sub = keras.saving.load_model(sub_path, compile=False)
probe = keras.Model(parent.input, parent.get_layer(layer).output)
x = np.random.default_rng(0).uniform(-1, 1, (32, *parent.input_shape[1:])).astype("float32")
ok = np.allclose(sub.predict(x, batch_size=8, verbose=0), probe.predict(x, batch_size=8,
                                                                        verbose=0), atol=1e-5)
print("PASSED" if ok else "FAILED")
sys.exit(0 if ok else 1)
