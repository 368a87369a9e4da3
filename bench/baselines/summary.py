"""Baseline for `inspect`: what a user would otherwise run."""

import sys

import keras

keras.saving.load_model(sys.argv[1], compile=False).summary()
