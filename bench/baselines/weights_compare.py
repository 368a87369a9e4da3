"""Baseline for `diff`: what a user writes today: load both models, compare every weight."""

import sys

import keras
import numpy as np

a = keras.saving.load_model(sys.argv[1], compile=False)
b = keras.saving.load_model(sys.argv[2], compile=False)
different = 0
for la, lb in zip(a.layers, b.layers, strict=True):
    if la.name != lb.name or la.__class__ is not lb.__class__:
        different += 1
        continue
    for wa, wb in zip(la.get_weights(), lb.get_weights(), strict=True):
        if wa.shape != wb.shape or not np.array_equal(wa, wb):
            different += 1
print(f"{different} differences")
# exit 0 either way: the benchmark times the comparison, not its verdict
